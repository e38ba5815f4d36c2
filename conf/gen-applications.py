#!/usr/bin/env python3
"""Writes conf/applications.toml, flowstat's built-in application table.

    conf/gen-applications.py NDPI_DATA_DIR [--check]

merges the hand-kept entries of conf/applications-hand.toml with nDPI's
data in NDPI_DATA_DIR (hosts.tsv, networks.tsv and protocols.tsv, extracted
from nDPI's src/lib/ndpi_content_match.c.inc, its generated address lists
and src/lib/ndpi_main.c; LGPL-3.0). The hand-kept entries win: their ids,
names, categories, domains and networks stay as they are, and nDPI's
patterns and blocks are added to them or to new entries for the
applications the hand-kept file lacks. --check compares instead of
writing, and fails when the file is not what the inputs give.

Run it after editing the hand-kept file or updating the nDPI extract; the
agent itself only reads conf/applications.toml.
"""

import ipaddress
import re
import sys
import tomllib
from pathlib import Path

CONF = Path(__file__).resolve().parent
HAND = CONF / "applications-hand.toml"
OUT = CONF / "applications.toml"

# nDPI's category names in hosts.tsv (ndpi_protocol_category_t, lowercase,
# as the extract spells them) -> the names flowstat_core::Category knows.
CATEGORIES = {
    "adult_content": "AdultContent",
    "chat": "Chat",
    "cloud": "Cloud",
    "collaborative": "Collaborative",
    "connectivity_check": "ConnCheck",
    "cybersecurity": "Cybersecurity",
    "data_transfer": "DataTransfer",
    "database": "Database",
    "download_ft": "Download",
    "game": "Game",
    "mail": "Email",
    "media": "Media",
    "music": "Music",
    "network": "Network",
    "remote_access": "RemoteAccess",
    "shopping": "Shopping",
    "social_network": "SocialNetwork",
    "streaming": "Streaming",
    "sw_update": "SoftwareUpdate",
    "system_os": "System",
    "video": "Video",
    "virtual_assistant": "VirtAssistant",
    "voip": "VoIP",
    "vpn": "VPN",
    "web": "Web",
}

# Applications nDPI names only through its host and address lists
# (host_match[] sets their name, so protocols.tsv, which lists the
# ndpi_set_proto_defaults() calls, lacks them): id from nDPI's
# src/include/ndpi_protocol_ids.h and the name nDPI prints.
HOST_ONLY = {
    "1kxun": (295, "1kxun"),
    "adobeconnect": (59, "AdobeConnect"),
    "adultcontent": (108, "AdultContent"),
    "appletvplus": (317, "AppleTVPlus"),
    "bluesky": (411, "Bluesky"),
    "cactusvpn": (428, "CactusVPN"),
    "cloudflarewarp": (300, "CloudflareWarp"),
    "cybersec": (283, "Cybersec"),
    "dailymotion": (322, "Dailymotion"),
    "dazn": (292, "Dazn"),
    "directv": (318, "DirecTV"),
    "dota2": (386, "Dota2"),
    "electronicarts": (389, "ElectronicArts"),
    "epicgames": (340, "EpicGames"),
    "facebookmessenger": (157, "FacebookMessenger"),
    "fbookreelstory": (337, "FbookReelStory"),
    "fuze": (270, "Fuze"),
    "geforcenow": (341, "GeForceNow"),
    "googlechat": (382, "GoogleChat"),
    "goto": (293, "GoTo"),
    "hbo": (319, "HBO"),
    "huawei": (398, "Huawei"),
    "huaweicloud": (399, "HuaweiCloud"),
    "iflix": (202, "IFLIX"),
    "iheartradio": (325, "IHeartRadio"),
    "livestream": (323, "Livestream"),
    "mastodon": (412, "Mastodon"),
    "nvidia": (342, "Nvidia"),
    "ocs": (218, "OCS"),
    "outlook": (21, "Outlook"),
    "privateinternetaccess": (384, "PrivateInternetAccess"),
    "psiphon": (303, "Psiphon"),
    "showtime": (321, "Showtime"),
    "sina": (200, "Sina"),
    "sinaweibo": (356, "SinaWeibo"),
    "siriusxmradio": (328, "SiriusXMRadio"),
    "surfshark": (427, "SurfShark"),
    "tencentvideo": (324, "Tencentvideo"),
    "threads": (413, "Threads"),
    "tidal": (326, "Tidal"),
    "tunein": (327, "TuneIn"),
    "tunnelbear": (299, "TunnelBear"),
    "vk": (22, "VK"),
    "vudu": (320, "Vudu"),
    "windscribe": (429, "Windscribe"),
    "yandex": (25, "Yandex"),
    "yandexcloud": (62, "YandexCloud"),
    "yandexdisk": (57, "YandexDisk"),
    "yandexmail": (33, "YandexMail"),
    "yandexmarket": (56, "YandexMarket"),
    "yandexmetrika": (98, "YandexMetrika"),
    "yandexmusic": (34, "YandexMusic"),
    "youtubeupload": (136, "YouTubeUpload"),
}

# The address lists' spellings (from nDPI's list file names) that do not
# reduce to the application's name by dropping case and underscores.
ALIASES = {"msoutlook": "outlook"}

# Categories of applications that only address lists name (hosts.tsv gives
# the others'), as nDPI's ndpi_set_proto_defaults() sets them.
NETWORK_ONLY_CATEGORIES = {
    "AVAST": "Cybersecurity",
    "ClickHouse": "Database",
    "CoD_Mobile": "Game",
    "DNScrypt": "Network",
    "ETHEREUM": "Network",  # nDPI: Mining, which flowstat lacks
    "EAQ": "Network",
    "Fuze": "VoIP",
    "GaijinEntertainment": "Game",
    "IRC": "Chat",
    "Mullvad": "VPN",
    "Mumble": "VoIP",
    "NetEaseGames": "Game",
    "OCS": "Media",
    "OCSP": "Network",
    "OperaVPN": "VPN",
    "PathofExile": "Game",
    "Pluralsight": "Streaming",
    "ProtonVPN": "VPN",
    "Softether": "VPN",
    "Starcraft": "Game",
    "Syncthing": "Download",
    "TES_Online": "Game",
    "Tailscale": "VPN",
    "TeslaServices": "Cloud",
    "Threema": "Chat",
    "Sonos": "Music",
    "DingTalk": "Collaborative",
}

# What the generated file says before the entries.
HEADER = """\
# flowstat application table.
#
# GENERATED by conf/gen-applications.py from conf/applications-hand.toml
# (the hand-kept entries) and nDPI's host patterns, address lists and
# protocol ids: edit the hand-kept file, or add a table of your own (below),
# then regenerate; do not edit this file.
#
# Origin and licence: the host patterns, address blocks, ids, names and
# categories marked "nDPI" below come from nDPI (github.com/ntop/nDPI:
# src/lib/ndpi_content_match.c.inc, its generated src/lib/inc_generated/
# address lists, src/include/ndpi_protocol_ids.h), (C) ntop.org and
# contributors, licensed under the GNU Lesser General Public License v3.0
# (LGPL-3.0). They are used here as data, unmodified except for merging.
#
# flowstatd loads this table at start and again on SIGHUP: the copy built
# into the binary, or the file `dpi.applications` names in flowstatd.toml
# (same format; `flowstatd list-applications -c CONFIG` shows what it
# names). A flow's application comes from its host name (TLS/QUIC SNI,
# HTTP Host, DNS query name), else from the DNS cache (an earlier answer
# that named the server's address), else from the server's address.
#
# Format: one [[application]] table per application, with the keys
#
#   id        integer, unique (see "Ids" below).
#   name      unique name; flow records carry it as
#             `detected_application_name`.
#   category  nDPI category name, spelled as nDPI prints it: Web,
#             SocialNetwork, Chat, VoIP, Media, Streaming, Video, Music,
#             Cloud, Collaborative, Email, Download, DataTransfer, Game,
#             Network, VPN, RemoteAccess, Shopping, SoftwareUpdate,
#             VirtAssistant, System, ... (the list: agent/core/src/category.rs).
#             Flow records carry its nDPI id as `category.application`
#             (Web is 5, SocialNetwork 6, ...).
#   domains   host-name patterns, lowercase, as nDPI writes them:
#               "example.com"   the name and every name ending in
#                               ".example.com" or "-example.com";
#               "example."      a trailing dot: the label(s) followed by
#                               any TLD or more labels ("example.com",
#                               "www.example.co.uk", "example.net.cdn.io"),
#                               at the start of the name or after a "."
#                               or "-";
#               "example-"      a trailing hyphen: likewise, a label that
#                               starts so ("example-cdn7.net");
#               ".example.com", "-example.com", "-example."
#                               a leading dot or hyphen is part of the
#                               pattern: the name must contain it there
#                               (".example.com" matches "a.example.com"
#                               but not "example.com").
#             Case does not matter and one trailing dot of the host name is
#             ignored. When several patterns match, the one with the most
#             labels wins; on a tie, the one that ends first in the name,
#             then the longest: "music.youtube.com" is YouTube through
#             "youtube.com", "mail.google.com" is GMail although
#             "google.com" is Google, "mail.google.co.uk" is GMail through
#             "mail.google." although "google." is Google. (This is nDPI
#             4.x's host_match rule; unlike nDPI, a pattern without a dot,
#             like "fbcdn-", matches only at the start of a label, and one
#             character before a pattern is no boundary.) Each pattern
#             belongs to one application.
#   networks  optional: IPv4/IPv6 CIDRs (no host bits set) of the
#             application's servers; the longest matching prefix wins. Only
#             ranges the operator publishes or has registered to itself
#             (the sources are named next to each list); leave it out
#             rather than guess.
#
# Unknown keys, a missing id, name or category, a category nDPI does not
# have, id 0, duplicate ids, names (case-insensitively), domains or
# networks, malformed domains and bad CIDRs are errors; the message names
# the file, the entry (its position, id and name) and the reason.
#
# Ids: flowstat numbers applications as nDPI does, so that
# `detected_application` means the same as in nDPI-based tools: an
# application nDPI has keeps nDPI's id and name, spelling included ("NetFlix",
# "Skype_Teams", "Cachefly"). The hand-kept entries keep the ids and names
# they were given, from older nDPI versions where nDPI has since renamed
# them (21 "Hotmail" is nDPI's "Outlook", 157 "Messenger" its
# "FacebookMessenger", 200 "Sina(Weibo)" its "Sina"). nDPI names some
# services by their owner: bing.com and msads.net are Microsoft here, as in
# nDPI. Other applications get ids from 10000 up, in the order they were
# added. An id is never reused or renumbered, even when its application is
# removed. Local additions should use ids from 1000000 up. Id 0 is
# "Unknown" and cannot be assigned.
#
# Entries are sorted by id: nDPI's ids first, then flowstat's own.
"""


def norm(name):
    """The key two spellings of one application share."""
    key = name.lower().replace("_", "")
    return ALIASES.get(key, key)


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            yield line.rstrip("\n").split("\t")


def hand_comments(text):
    """Comment lines right before a key inside each hand-kept entry:
    {(id, key): [lines]}."""
    comments = {}
    for chunk in text.split("[[application]]")[1:]:
        m = re.search(r"^id = (\d+)$", chunk, re.M)
        if not m:
            continue
        pending = []
        for line in chunk.splitlines():
            if line.startswith("#"):
                pending.append(line)
                continue
            m2 = re.match(r"^(\w+) = ", line)
            if m2 and pending:
                comments[(int(m.group(1)), m2.group(1))] = pending
            if line.strip():
                pending = []
    return comments


def net_key(cidr):
    n = ipaddress.ip_network(cidr)
    return (n.version, n.network_address, n.prefixlen)


def toml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array(key, values, comment_split=None, nested_comments=None):
    """`key = [...]`, one value a line; `comment_split`: (index, comment)
    puts a comment line before values[index]."""
    if not values:
        return []
    inline = f"{key} = [{', '.join(toml_str(v) for v in values)}]"
    if len(inline) <= 79 and not comment_split:
        return [inline]
    lines = [f"{key} = ["]
    for i, v in enumerate(values):
        if comment_split and i == comment_split[0]:
            lines.append(f"    # {comment_split[1]}")
        lines.append(f"    {toml_str(v)},")
    lines.append("]")
    return lines


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    check = "--check" in sys.argv[1:]
    if len(args) != 1:
        sys.exit(__doc__)
    data = Path(args[0])
    hand_text = HAND.read_text(encoding="utf-8")
    hand = tomllib.loads(hand_text)["application"]
    comments = hand_comments(hand_text)

    protocols = {}
    for pid, name in read_tsv(data / "protocols.tsv"):
        protocols[norm(name)] = (int(pid), name)

    apps = {}  # id -> entry
    by_name = {}  # norm(name) -> id
    claimed_domains = {}
    claimed_nets = {}
    for e in hand:
        entry = {
            "id": e["id"],
            "name": e["name"],
            "category": e["category"],
            "domains": list(e.get("domains", [])),
            "networks": list(e.get("networks", [])),
            "ndpi_domains": [],
            "ndpi_networks": [],
            "hand": True,
        }
        apps[e["id"]] = entry
        by_name[norm(e["name"])] = e["id"]
        for d in entry["domains"]:
            claimed_domains[d] = e["id"]
        for n in entry["networks"]:
            claimed_nets[net_key(n)] = e["id"]

    def resolve(name, category=None):
        """The id of nDPI's application `name`, adding an entry when the
        table has none."""
        key = norm(name)
        if key in by_name:
            return by_name[key]
        if key in protocols:
            pid, pname = protocols[key]
        elif key in HOST_ONLY:
            pid, pname = HOST_ONLY[key]
        else:
            sys.exit(f"nDPI application {name!r} has no id: add it to HOST_ONLY")
        if pid in apps:
            by_name[key] = pid
            return pid
        cat = category or NETWORK_ONLY_CATEGORIES.get(pname)
        if cat is None:
            sys.exit(f"nDPI application {pname!r} has no category: add it to NETWORK_ONLY_CATEGORIES")
        apps[pid] = {
            "id": pid,
            "name": pname,
            "category": cat,
            "domains": [],
            "networks": [],
            "ndpi_domains": [],
            "ndpi_networks": [],
            "hand": False,
        }
        by_name[key] = pid
        return pid

    skipped = []
    for pattern, name, category in read_tsv(data / "hosts.tsv"):
        pattern = pattern.lower()
        app = resolve(name, CATEGORIES[category])
        owner = claimed_domains.get(pattern)
        if owner is not None:
            if owner != app:
                skipped.append(
                    f"host {pattern}: nDPI {name}, kept {apps[owner]['name']}"
                )
            continue
        claimed_domains[pattern] = app
        apps[app]["ndpi_domains"].append(pattern)

    # The last of nDPI's duplicate blocks wins, as in nDPI's patricia tree.
    blocks = {}
    for cidr, name in read_tsv(data / "networks.tsv"):
        blocks[net_key(cidr)] = (cidr, name)
    for key in sorted(blocks):
        cidr, name = blocks[key]
        app = resolve(name)
        owner = claimed_nets.get(key)
        if owner is not None:
            if owner != app:
                skipped.append(f"network {cidr}: nDPI {name}, kept {apps[owner]['name']}")
            continue
        claimed_nets[key] = app
        apps[app]["ndpi_networks"].append(str(ipaddress.ip_network(cidr)))

    out = [HEADER]
    section = None
    # nDPI applications whose every pattern and block a hand-kept entry
    # has (SinaWeibo's are Sina(Weibo)'s) would name nothing.
    apps = {k: e for k, e in apps.items() if e["hand"] or e["ndpi_domains"] or e["ndpi_networks"]}
    for pid in sorted(apps):
        e = apps[pid]
        this = "nDPI ids" if pid < 10000 else "flowstat ids"
        if this != section:
            section = this
            out.append("# " + "-" * (76 - len(this)) + " " + this + "\n")
        lines = ["[[application]]", f"id = {pid}", f"name = {toml_str(e['name'])}"]
        lines.append(f"category = {toml_str(e['category'])}")
        for key in ("domains", "networks"):
            own, ndpi = e[key], e["ndpi_" + key]
            values = own + ndpi
            lines += comments.get((pid, key), [])
            split = None
            if ndpi:
                what = "host patterns" if key == "domains" else "address lists"
                split = (len(own), f"nDPI {what} (LGPL-3.0)")
            lines += array(key, values, split)
        out.append("\n".join(lines) + "\n")
    text = "\n".join(out)

    for s in skipped:
        print("kept the hand-kept owner:", s, file=sys.stderr)
    counts = (
        len(apps),
        sum(len(e["domains"]) + len(e["ndpi_domains"]) for e in apps.values()),
        sum(len(e["networks"]) + len(e["ndpi_networks"]) for e in apps.values()),
    )
    print("%d applications, %d host patterns, %d networks" % counts, file=sys.stderr)
    if check:
        if OUT.read_text(encoding="utf-8") != text:
            sys.exit(f"{OUT} is not what {Path(sys.argv[0]).name} writes: regenerate it")
        return
    OUT.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
