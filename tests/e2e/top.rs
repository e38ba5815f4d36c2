//! `flowstatd top` in a real terminal: tmux runs it at 80x24 against the
//! API of a lingering replay, keys are typed with `send-keys`, and
//! `capture-pane` must show the rows the API itself answers.

use crate::common::{ApiReplay, TempDir, Tmux, fixture, flowstatd, run_flowstatd};

const TOKEN: &str = "top-secret";

/// The screen's line that holds every one of `parts`.
fn row<'a>(screen: &'a str, parts: &[&str]) -> Option<&'a str> {
    screen.lines().find(|l| parts.iter().all(|p| l.contains(p)))
}

#[test]
fn top_shows_flows_and_applications_in_80x24() {
    let dir = TempDir::new("top");
    let config = dir.path("flowstatd.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\ntoken = \"{TOKEN}\"\n\n\
             [[flow_definition]]\nname = \"top-apps\"\nkeys = [\"application\"]\n"
        ),
    )
    .unwrap();
    let out = dir.path("out.json");
    let agent =
        ApiReplay::start(&[fixture("ndpi/google_ssl.pcap")], &config, &out, &[]).with_token(TOKEN);
    agent.wait_done(&out, 1);
    assert_eq!(agent.get("/agent/json").0, 200);
    let url = &agent.base;

    // What the screen must show, from the API itself.
    let (_, flows) = agent.get("/flows/top/json?maxFlows=20");
    let flows = flows.as_array().unwrap().clone();
    assert!(
        flows.iter().any(|f| f["other_ip"] == "216.58.212.100"),
        "{flows:?}"
    );
    let (_, apps) = agent.get("/activeflows/ALL/top-apps/json");
    let apps = apps.as_array().unwrap().clone();
    assert!(
        apps.iter().any(|a| a["key"]["application"] == "Google"),
        "{apps:?}"
    );

    // Without the token, an error that says what to do.
    let out = run_flowstatd(&["top", "--once", url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("401") && stderr.contains("--token"),
        "{stderr}"
    );

    let top = format!(
        "FLOWSTAT_API_TOKEN={TOKEN} {} top {url}",
        flowstatd().display()
    );
    let tmux = Tmux::start(80, 24, &top);

    // The rows, not the header: the API's URL in it may hold ":443" too.
    let screen = tmux.wait_for("the flows", |s| {
        s.contains("flows by rate") && row(s, &["216.58.212.100:443"]).is_some()
    });
    assert!(screen.lines().all(|l| l.chars().count() <= 80), "{screen}");
    assert_eq!(screen.lines().count(), 24, "{screen}");
    for f in &flows {
        let other = format!("{}:{}", f["other_ip"].as_str().unwrap(), f["other_port"]);
        let app = f["detected_application_name"].as_str().unwrap();
        assert!(
            row(&screen, &[app, &other]).is_some(),
            "no row of {other} {app}:\n{screen}"
        );
    }
    assert!(
        row(&screen, &["Google", "TLS", "216.58.212.100:443"]).is_some(),
        "{screen}"
    );
    // No error line (its port may hold "401": look for the hint).
    assert!(!screen.contains("--token"), "{screen}");

    tmux.send_keys("a");
    let screen = tmux.wait_for("the applications", |s| {
        s.contains("applications by rate") && row(s, &["Google", "/s"]).is_some()
    });
    for a in &apps {
        let name = a["key"]["application"].as_str().unwrap();
        assert!(
            row(&screen, &[name, "/s"]).is_some(),
            "no row of {name}:\n{screen}"
        );
    }
    assert!(!screen.contains("216.58.212.100"), "{screen}");

    tmux.send_keys("q");
    tmux.wait_exit("q did not quit");
}
