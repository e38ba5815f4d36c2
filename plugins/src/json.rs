//! A JSON object writer for the records' hot path.
//!
//! Records are written field by field into a byte buffer. Field names are
//! [`Key`]s made at compile time by [`key!`] (`"name":`, copied with a
//! constant length); numbers go through `itoa`; every string that comes from outside
//! (interface and host names) is escaped by serde_json. Several times
//! faster than serializing the same object through serde, which matters at
//! one record for every few packets.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

/// A field name with its JSON punctuation, `"name":`; made by [`key!`].
#[derive(Clone, Copy)]
pub(crate) struct Key(pub(crate) &'static str);

/// The [`Key`] of a literal field name (which must need no escaping).
macro_rules! key {
    ($name:literal) => {
        $crate::json::Key(concat!("\"", $name, "\":"))
    };
}
pub(crate) use key;

/// Writes one JSON object into a buffer.
pub(crate) struct Json<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Json<'a> {
    #[inline]
    pub(crate) fn new(buf: &'a mut Vec<u8>) -> Self {
        Json { buf }
    }

    /// Writes `{`, the fields `body` writes, and `}`.
    #[inline]
    pub(crate) fn object(&mut self, body: impl FnOnce(&mut Self)) {
        self.buf.push(b'{');
        body(self);
        self.buf.push(b'}');
    }

    #[inline]
    fn at_start(&self) -> bool {
        matches!(self.buf.last(), Some(b'{' | b'['))
    }

    #[inline]
    fn key(&mut self, key: Key) {
        self.comma();
        // A constant length once inlined: copied without a call.
        self.buf.extend_from_slice(key.0.as_bytes());
    }

    #[inline]
    fn comma(&mut self) {
        if !self.at_start() {
            self.buf.push(b',');
        }
    }

    /// A key that is not a literal (interface names, counter kinds).
    #[inline]
    fn name(&mut self, name: &str) {
        self.comma();
        self.string(name);
        self.buf.push(b':');
    }

    /// A field whose value is an object.
    #[inline]
    pub(crate) fn field_object(&mut self, key: Key, body: impl FnOnce(&mut Self)) {
        self.key(key);
        self.object(body);
    }

    /// A field named `name` whose value is an object.
    #[inline]
    pub(crate) fn named_object(&mut self, name: &str, body: impl FnOnce(&mut Self)) {
        self.name(name);
        self.object(body);
    }

    /// An unsigned integer field.
    #[inline]
    pub(crate) fn u64(&mut self, key: Key, value: impl Into<u64>) {
        self.key(key);
        self.number(value.into());
    }

    /// An unsigned integer field named `name`.
    #[inline]
    pub(crate) fn named_u64(&mut self, name: &str, value: u64) {
        self.name(name);
        self.number(value);
    }

    #[inline]
    fn number(&mut self, value: u64) {
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// A boolean field.
    #[inline]
    pub(crate) fn bool(&mut self, key: Key, value: bool) {
        self.key(key);
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// A string field, escaped.
    #[inline]
    pub(crate) fn str(&mut self, key: Key, value: &str) {
        self.key(key);
        self.string(value);
    }

    /// A string field whose value is already JSON: quoted and escaped by
    /// [`escape`].
    #[inline]
    pub(crate) fn escaped(&mut self, key: Key, value: &[u8]) {
        self.key(key);
        self.buf.extend_from_slice(value);
    }

    /// Fields rendered in advance, `"a":1,"b":false`: runs of fields whose
    /// values never change.
    #[inline]
    pub(crate) fn constant_fields(&mut self, fields: &'static str) {
        self.comma();
        self.buf.extend_from_slice(fields.as_bytes());
    }

    /// A string field made of ASCII that needs no escaping (hex, names of
    /// this program's own making).
    #[inline]
    pub(crate) fn ascii(&mut self, key: Key, value: &[u8]) {
        debug_assert!(
            value
                .iter()
                .all(|&b| b.is_ascii() && b != b'"' && b != b'\\' && b >= 0x20)
        );
        self.key(key);
        self.quoted(value);
    }

    /// An array of ASCII strings that need no escaping.
    #[inline]
    pub(crate) fn ascii_array<V: AsRef<[u8]>>(
        &mut self,
        key: Key,
        values: impl IntoIterator<Item = V>,
    ) {
        self.key(key);
        self.buf.push(b'[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.quoted(v.as_ref());
        }
        self.buf.push(b']');
    }

    /// An array of strings, escaped.
    #[inline]
    pub(crate) fn str_array<'v>(&mut self, key: Key, values: impl IntoIterator<Item = &'v str>) {
        self.key(key);
        self.buf.push(b'[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.string(v);
        }
        self.buf.push(b']');
    }

    /// An IP address field, in its standard text form.
    #[inline]
    pub(crate) fn ip(&mut self, key: Key, ip: IpAddr) {
        self.key(key);
        self.buf.push(b'"');
        match ip {
            IpAddr::V4(a) => {
                for (i, octet) in a.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b'.');
                    }
                    self.number(u64::from(octet));
                }
            }
            IpAddr::V6(a) => {
                // Writing into a Vec cannot fail.
                let _ = write!(Utf8Sink(self.buf), "{a}");
            }
        }
        self.buf.push(b'"');
    }

    /// A string field formatted by `Display`, which must produce text that
    /// needs no escaping.
    #[inline]
    pub(crate) fn display(&mut self, key: Key, value: impl fmt::Display) {
        self.key(key);
        self.buf.push(b'"');
        // Writing into a Vec cannot fail.
        let _ = write!(Utf8Sink(self.buf), "{value}");
        self.buf.push(b'"');
    }

    #[inline]
    fn quoted(&mut self, value: &[u8]) {
        self.buf.push(b'"');
        self.buf.extend_from_slice(value);
        self.buf.push(b'"');
    }

    #[inline]
    fn string(&mut self, value: &str) {
        // serde_json escapes exactly as JSON requires; writing into a Vec
        // cannot fail.
        let _ = serde_json::to_writer(&mut *self.buf, value);
    }
}

/// `value` as a JSON string: quoted and escaped.
pub(crate) fn escape(value: &str) -> Vec<u8> {
    // Writing into a Vec cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// `fmt::Write` into a byte buffer.
struct Utf8Sink<'a>(&'a mut Vec<u8>);

impl fmt::Write for Utf8Sink<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[inline]
    fn writes_valid_json_with_escaped_strings() {
        let mut buf = Vec::new();
        Json::new(&mut buf).object(|j| {
            j.u64(key!("n"), u64::MAX);
            j.bool(key!("b"), false);
            j.str(key!("s"), "a\"b\\c\n\u{1}é");
            j.field_object(key!("o"), |j| j.u64(key!("x"), 1u8));
            j.ascii_array(key!("a"), [b"x", b"y"]);
            j.ascii_array(key!("e"), std::iter::empty::<&[u8]>());
            j.ip(key!("v4"), "192.0.2.255".parse().unwrap());
            j.ip(key!("v6"), "2001:db8::1".parse().unwrap());
            j.named_object("eth\"0", |j| j.named_u64("k", 7));
            j.escaped(key!("pre"), &escape("x\ty"));
            j.constant_fields(r#""c1":false,"c2":{"x":0}"#);
        });
        let text = String::from_utf8(buf).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["n"], u64::MAX);
        assert_eq!(v["s"], "a\"b\\c\n\u{1}é");
        assert_eq!(v["o"]["x"], 1);
        assert_eq!(v["a"], serde_json::json!(["x", "y"]));
        assert_eq!(v["e"], serde_json::json!([]));
        assert_eq!(v["v4"], "192.0.2.255");
        assert_eq!(v["v6"], "2001:db8::1");
        assert_eq!(v["eth\"0"]["k"], 7);
        assert_eq!(v["pre"], "x\ty");
        assert_eq!(v["c2"]["x"], 0);
        assert!(text.starts_with(r#"{"n":18446744073709551615,"b":false,"#));
    }
}
