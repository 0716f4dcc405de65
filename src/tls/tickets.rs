//! Session tickets every worker can open: one ticket key at a time, made by
//! the master and rotated by it every `options.tls.session_timeout`
//! seconds, published to the workers through a shared page.
//!
//! A ticket is the session's state sealed with AES-256-GCM (ring, the TLS
//! provider's own library) under the current key: `key id (4 bytes, big
//! endian) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`, the key id also bound in
//! as associated data. The page holds the current key and the one before
//! it, so a ticket opens for between one and two periods after it was
//! made; a rotation overwrites the key before the previous one, which is
//! what ends its tickets (rustls asks that lifetimes be kept by erasing
//! keys, for forward secrecy, not by dates inside the ticket).
//!
//! The page is mapped by the first TLS configuration the master builds,
//! before it forks, and kept for the master's life: workers forked at
//! start, on a reload or after a crash all read the same keys, and a reload
//! (certbot's deploy hook) ends no session.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;

use crate::sys::SharedRegion;

/// Bytes of a ticket key (AES-256).
const KEY_BYTES: usize = 32;
const ID_BYTES: usize = 4;
const TAG_BYTES: usize = 16;

/// One key as the page stores it: its id (0 = never written) and its bytes,
/// as atomics so that readers in other processes never race on plain memory.
#[derive(bytemuck::Zeroable)]
#[repr(C)]
struct KeySlot {
    id: AtomicU32,
    words: [AtomicU64; KEY_BYTES / 8],
}

/// The shared page: a sequence lock (odd while the master writes), the
/// current key's id, when it was made, and two slots (key `id` is in slot
/// `id % 2`).
#[derive(bytemuck::Zeroable)]
#[repr(C)]
struct KeyPage {
    sequence: AtomicU64,
    current: AtomicU32,
    made_at: AtomicU64,
    slots: [KeySlot; 2],
}

/// A copy of one key, read consistently.
#[derive(Clone, Copy)]
struct Key {
    id: u32,
    bytes: [u8; KEY_BYTES],
}

/// The ticket keys' page.
pub struct TicketKeys {
    page: SharedRegion<KeyPage, ()>,
}

static KEYS: OnceLock<TicketKeys> = OnceLock::new();

impl TicketKeys {
    /// The process's keys, mapped (with a first key) on first use — in the
    /// master, when it builds its first TLS configuration before forking.
    pub fn shared() -> std::io::Result<&'static TicketKeys> {
        if let Some(keys) = KEYS.get() {
            return Ok(keys);
        }
        let keys = TicketKeys {
            page: SharedRegion::new(0)?,
        };
        keys.rotate(crate::sys::unix_now())?;
        Ok(KEYS.get_or_init(|| keys))
    }

    /// In the master, once per pass of its loop: a new key when the current
    /// one is `period` seconds old (no-op when no TLS configuration was
    /// ever built).
    pub fn rotate_when_due(period: u64) {
        let Some(keys) = KEYS.get() else {
            return;
        };
        let now = crate::sys::unix_now();
        let made_at = keys.page.header().made_at.load(Ordering::Relaxed) as i64;
        if now.saturating_sub(made_at) >= period as i64
            && let Err(e) = keys.rotate(now)
        {
            log::warn!("cannot make a new session ticket key: {e}");
        }
    }

    /// Writes a fresh random key as the current one, over the key before
    /// the previous one.
    fn rotate(&self, now: i64) -> std::io::Result<()> {
        let mut bytes = [0u8; KEY_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| std::io::Error::other("no random bytes from the system"))?;
        let page = self.page.header();
        let id = page.current.load(Ordering::Relaxed).wrapping_add(1).max(1);
        let slot = &page.slots[id as usize % 2];
        // Sequence lock: readers retry while the count is odd or changed.
        page.sequence.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::Release);
        slot.id.store(id, Ordering::Relaxed);
        for (word, chunk) in slot.words.iter().zip(bytes.chunks_exact(8)) {
            let mut value = [0u8; 8];
            value.copy_from_slice(chunk);
            word.store(u64::from_ne_bytes(value), Ordering::Relaxed);
        }
        page.current.store(id, Ordering::Relaxed);
        page.made_at.store(now as u64, Ordering::Relaxed);
        page.sequence.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// The current key and the previous one (None where never written).
    fn read(&self) -> (Option<Key>, Option<Key>) {
        let page = self.page.header();
        loop {
            let before = page.sequence.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let current = page.current.load(Ordering::Relaxed);
            let keys = page.slots.each_ref().map(|slot| {
                let mut bytes = [0u8; KEY_BYTES];
                for (chunk, word) in bytes.chunks_exact_mut(8).zip(&slot.words) {
                    chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
                }
                Key {
                    id: slot.id.load(Ordering::Relaxed),
                    bytes,
                }
            });
            fence(Ordering::Acquire);
            if page.sequence.load(Ordering::Relaxed) != before {
                continue;
            }
            let find = |id: u32| keys.iter().copied().find(|key| key.id == id && id != 0);
            return (find(current), find(current.wrapping_sub(1)));
        }
    }
}

/// The rustls side: seals with the current key, opens with either.
#[derive(Debug)]
pub struct SharedTicketer {
    keys: &'static TicketKeys,
    /// The lifetime told to clients: one rotation period.
    lifetime: u32,
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKeys")
    }
}

impl SharedTicketer {
    pub fn new(keys: &'static TicketKeys, lifetime_secs: u64) -> SharedTicketer {
        SharedTicketer {
            keys,
            lifetime: u32::try_from(lifetime_secs).unwrap_or(u32::MAX),
        }
    }
}

fn aead_key(key: &Key) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, &key.bytes)
        .ok()
        .map(LessSafeKey::new)
}

impl ProducesTickets for SharedTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let (Some(key), _) = self.keys.read() else {
            return None;
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let id = key.id.to_be_bytes();
        let mut ticket = Vec::with_capacity(ID_BYTES + NONCE_LEN + plain.len() + TAG_BYTES);
        ticket.extend_from_slice(&id);
        ticket.extend_from_slice(&nonce);
        let mut sealed = plain.to_vec();
        aead_key(&key)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id),
                &mut sealed,
            )
            .ok()?;
        ticket.extend_from_slice(&sealed);
        Some(ticket)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() < ID_BYTES + NONCE_LEN + TAG_BYTES {
            return None;
        }
        let (id, rest) = ticket.split_at(ID_BYTES);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let id = u32::from_be_bytes(id.try_into().ok()?);
        let (current, previous) = self.keys.read();
        let key = [current, previous]
            .into_iter()
            .flatten()
            .find(|key| key.id == id)?;
        let mut opened = sealed.to_vec();
        let plain_len = aead_key(&key)?
            .open_in_place(
                Nonce::try_assume_unique_for_key(nonce).ok()?,
                Aad::from(id.to_be_bytes()),
                &mut opened,
            )
            .ok()?
            .len();
        opened.truncate(plain_len);
        Some(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> &'static TicketKeys {
        Box::leak(Box::new(TicketKeys {
            page: SharedRegion::new(0).expect("mapped"),
        }))
    }

    #[test]
    fn a_ticket_opens_for_two_keys_then_not() {
        let keys = keys();
        keys.rotate(100).expect("key");
        let ticketer = SharedTicketer::new(keys, 60);
        let ticket = ticketer.encrypt(b"session state").expect("sealed");
        assert_eq!(&ticket[..4], &1u32.to_be_bytes());
        assert_eq!(
            ticketer.decrypt(&ticket).as_deref(),
            Some(&b"session state"[..])
        );
        keys.rotate(160).expect("key");
        assert_eq!(
            ticketer.decrypt(&ticket).as_deref(),
            Some(&b"session state"[..])
        );
        let newer = ticketer.encrypt(b"newer").expect("sealed");
        assert_eq!(&newer[..4], &2u32.to_be_bytes());
        keys.rotate(220).expect("key");
        assert_eq!(ticketer.decrypt(&ticket), None, "its key was overwritten");
        assert_eq!(ticketer.decrypt(&newer).as_deref(), Some(&b"newer"[..]));
        assert_eq!(ticketer.lifetime(), 60);
    }

    #[test]
    fn forged_or_damaged_tickets_do_not_open() {
        let keys = keys();
        keys.rotate(0).expect("key");
        let ticketer = SharedTicketer::new(keys, 60);
        let ticket = ticketer.encrypt(b"state").expect("sealed");
        for cut in 0..ticket.len() {
            assert_eq!(ticketer.decrypt(&ticket[..cut]), None, "cut at {cut}");
        }
        for at in 0..ticket.len() {
            let mut damaged = ticket.clone();
            damaged[at] ^= 1;
            assert_eq!(ticketer.decrypt(&damaged), None, "bit flipped at {at}");
        }
        assert_eq!(ticketer.decrypt(&[]), None);
    }
}
