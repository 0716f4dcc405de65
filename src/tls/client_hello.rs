//! The SNI name of a ClientHello, read from its plaintext records. Over
//! kernel TLS the handshake runs on rustls's unbuffered connection, which
//! does not report the name, yet the certificate it chose (and with it the
//! 421 rule) depends on it. rustls parses and checks the message itself;
//! this reads one field of it, and anything it cannot read means "no name".

/// TLS handshake message type of ClientHello, and extension type of server_name.
const CLIENT_HELLO: u8 = 1;
const SERVER_NAME: u16 = 0;
const HOST_NAME: u8 = 0;

/// What the handshake bytes seen so far say.
#[derive(Debug, PartialEq, Eq)]
pub enum Sni {
    /// The ClientHello is not complete yet.
    Incomplete,
    /// Its name, or None (no SNI, or a message that is not a readable ClientHello).
    Done(Option<String>),
}

/// A cursor over bytes that fails (None) rather than reading past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// A block with a length prefix of `width` bytes.
    fn block(&mut self, width: usize) -> Option<Reader<'a>> {
        let len = match width {
            1 => usize::from(self.u8()?),
            _ => usize::from(self.u16()?),
        };
        self.take(len).map(Reader)
    }
}

/// The SNI name in `handshake`: the handshake messages' bytes (records'
/// payloads joined) from the first.
pub fn server_name(handshake: &[u8]) -> Sni {
    if handshake.len() < 4 {
        return Sni::Incomplete;
    }
    if handshake[0] != CLIENT_HELLO {
        return Sni::Done(None);
    }
    let len = u32::from_be_bytes([0, handshake[1], handshake[2], handshake[3]]) as usize;
    let Some(body) = handshake.get(4..4 + len) else {
        return Sni::Incomplete;
    };
    Sni::Done(name_in(body))
}

fn name_in(body: &[u8]) -> Option<String> {
    let mut hello = Reader(body);
    hello.take(2 + 32)?; // legacy_version, random
    hello.block(1)?; // legacy_session_id
    hello.block(2)?; // cipher_suites
    hello.block(1)?; // legacy_compression_methods
    let mut extensions = hello.block(2)?;
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let mut data = extensions.block(2)?;
        if kind != SERVER_NAME {
            continue;
        }
        let mut names = data.block(2)?;
        while !names.0.is_empty() {
            let name_type = names.u8()?;
            let name = names.block(2)?;
            if name_type == HOST_NAME {
                let name = std::str::from_utf8(name.0).ok()?;
                return Some(name.trim_end_matches('.').to_ascii_lowercase());
            }
        }
        return None;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello with `extensions` (type, data) pairs.
    fn client_hello(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([0xAB; 32]);
        body.extend([32]);
        body.extend([0x11; 32]);
        body.extend([0, 4, 0x13, 0x01, 0x13, 0x02]);
        body.extend([1, 0]);
        let mut all = Vec::new();
        for (kind, data) in extensions {
            all.extend(kind.to_be_bytes());
            all.extend((data.len() as u16).to_be_bytes());
            all.extend(data);
        }
        body.extend((all.len() as u16).to_be_bytes());
        body.extend(all);
        let mut message = vec![CLIENT_HELLO];
        message.extend(&(body.len() as u32).to_be_bytes()[1..]);
        message.extend(body);
        message
    }

    fn sni(name: &str) -> Vec<u8> {
        let mut entry = vec![HOST_NAME];
        entry.extend((name.len() as u16).to_be_bytes());
        entry.extend(name.as_bytes());
        let mut list = (entry.len() as u16).to_be_bytes().to_vec();
        list.extend(entry);
        list
    }

    #[test]
    fn the_name_is_found_among_other_extensions() {
        let hello = client_hello(&[
            (10, vec![0, 2, 0, 29]),
            (0, sni("Films.Example.ORG.")),
            (
                16,
                vec![0, 9, 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1'],
            ),
        ]);
        assert_eq!(
            server_name(&hello),
            Sni::Done(Some("films.example.org".into()))
        );
    }

    #[test]
    fn no_extension_or_no_name_is_none() {
        assert_eq!(server_name(&client_hello(&[])), Sni::Done(None));
        assert_eq!(
            server_name(&client_hello(&[(10, vec![0, 2, 0, 29])])),
            Sni::Done(None)
        );
    }

    #[test]
    fn a_partial_message_waits_and_garbage_is_no_name() {
        let hello = client_hello(&[(0, sni("a.test"))]);
        for cut in 0..hello.len() {
            assert_eq!(server_name(&hello[..cut]), Sni::Incomplete, "cut at {cut}");
        }
        assert_eq!(
            server_name(&[2, 0, 0, 0]),
            Sni::Done(None),
            "not a ClientHello"
        );
        let mut broken = hello.clone();
        let at = broken.len() - 8;
        broken[at] = 0xFF; // a name length past the end
        assert!(matches!(server_name(&broken), Sni::Done(_)));
        // Every truncation of the body inside a complete frame is read safely.
        for cut in 4..hello.len() {
            let mut framed = hello[..cut].to_vec();
            let len = (cut - 4) as u32;
            framed[1..4].copy_from_slice(&len.to_be_bytes()[1..]);
            let _ = server_name(&framed);
        }
    }
}
