//! Application categories: nDPI's category ids and names.
//!
//! Netify v5 consumers read `category.application` as a number; flowstat
//! numbers categories as nDPI's `ndpi_category_t` does and names them as
//! nDPI prints them (`ndpi_category_get_name`), so that `5` is "Web"
//! everywhere. Ids never change meaning.

use std::fmt;

/// nDPI's categories an application table may name, by id and name.
/// nDPI's user-defined categories (20 to 24) have no fixed name and are
/// left out. Sorted by id.
static TABLE: &[(u8, &str)] = &[
    (0, "Unspecified"),
    (1, "Media"),
    (2, "VPN"),
    (3, "Email"),
    (4, "DataTransfer"),
    (5, "Web"),
    (6, "SocialNetwork"),
    (7, "Download"),
    (8, "Game"),
    (9, "Chat"),
    (10, "VoIP"),
    (11, "Database"),
    (12, "RemoteAccess"),
    (13, "Cloud"),
    (14, "Network"),
    (15, "Collaborative"),
    (16, "RPC"),
    (17, "Streaming"),
    (18, "System"),
    (19, "SoftwareUpdate"),
    (25, "Music"),
    (26, "Video"),
    (27, "Shopping"),
    (28, "Productivity"),
    (29, "FileSharing"),
    (30, "ConnCheck"),
    (32, "VirtAssistant"),
    (33, "Cybersecurity"),
    (34, "AdultContent"),
    (101, "Advertisement"),
];

/// A category from nDPI's table: one byte, its position in the table.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Category(u8);

impl Category {
    /// No category ("Unspecified", id 0): no application, or one the
    /// application table does not categorise.
    pub const UNSPECIFIED: Category = Category(0);

    /// The category nDPI calls `name` (exact spelling, e.g. "Web",
    /// "SocialNetwork"), if the table has it.
    pub fn from_name(name: &str) -> Option<Category> {
        let index = TABLE.iter().position(|&(_, n)| n == name)?;
        u8::try_from(index).ok().map(Category)
    }

    /// Every category name, in id order, for messages.
    pub fn names() -> impl Iterator<Item = &'static str> {
        TABLE.iter().map(|&(_, name)| name)
    }

    /// nDPI's id (`ndpi_category_t`), as `category.application` carries it.
    pub fn id(self) -> u8 {
        self.entry().0
    }

    /// nDPI's name, e.g. "Web"; "Unspecified" for none.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    fn entry(self) -> (u8, &'static str) {
        TABLE
            .get(usize::from(self.0))
            .copied()
            .unwrap_or((0, "Unspecified"))
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Category({}/{})", self.name(), self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
        for (i, &(_, name)) in TABLE.iter().enumerate() {
            assert_eq!(Category::names().position(|n| n == name), Some(i), "{name}");
        }
        assert!(u8::try_from(TABLE.len()).is_ok());
    }

    /// Ids from nDPI's `ndpi_category_t` (`src/include/ndpi_typedefs.h`);
    /// all but Music, Video and VirtAssistant also show as `cat: NAME/ID`
    /// in the nDPI corpus's `.out` files (`tests/fixtures/ndpi`).
    #[test]
    fn names_and_ids_match_ndpi() {
        for (name, id) in [
            ("Media", 1),
            ("VPN", 2),
            ("Email", 3),
            ("Web", 5),
            ("SocialNetwork", 6),
            ("Download", 7),
            ("VoIP", 10),
            ("Database", 11),
            ("RemoteAccess", 12),
            ("Cloud", 13),
            ("Network", 14),
            ("RPC", 16),
            ("Streaming", 17),
            ("System", 18),
            ("Music", 25),
            ("Video", 26),
            ("VirtAssistant", 32),
            ("Advertisement", 101),
        ] {
            let c = Category::from_name(name).unwrap_or_else(|| panic!("no {name}"));
            assert_eq!(c.id(), id, "{name}");
            assert_eq!(c.name(), name);
        }
    }

    #[test]
    fn unspecified_is_zero_and_the_default() {
        assert_eq!(Category::default(), Category::UNSPECIFIED);
        assert_eq!(Category::UNSPECIFIED.id(), 0);
        assert_eq!(Category::UNSPECIFIED.name(), "Unspecified");
        assert_eq!(
            Category::from_name("Unspecified"),
            Some(Category::UNSPECIFIED)
        );
    }

    #[test]
    fn unknown_names_are_refused() {
        assert_eq!(Category::from_name("web"), None, "spelling is exact");
        assert_eq!(Category::from_name(""), None);
        assert_eq!(Category::from_name("Social media"), None);
    }

    #[test]
    fn debug_and_display_name_it() {
        let web = Category::from_name("Web").unwrap();
        assert_eq!(web.to_string(), "Web");
        assert_eq!(format!("{web:?}"), "Category(Web/5)");
    }
}
