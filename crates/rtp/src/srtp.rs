//! SRTP and SRTCP with the SDES suites AES_CM_128_HMAC_SHA1_80 and _32 (RFC 3711, RFC 4568):
//! session-key derivation, AES counter-mode encryption, HMAC-SHA1 authentication, the
//! rollover counter and a 64-packet replay window per SSRC.

use std::collections::HashMap;

use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128};
use aws_lc_rs::hmac;

/// Master key (16 bytes) and master salt (14 bytes).
pub const MASTER_LEN: usize = 30;
const SRTCP_TAG_LEN: usize = 10;
const REPLAY_WINDOW: u64 = 64;

/// The protection profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpProfile {
    /// 80-bit authentication tag.
    AesCm128HmacSha1_80,
    /// 32-bit tag on SRTP packets (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
}

impl SrtpProfile {
    fn rtp_tag_len(self) -> usize {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => 10,
            SrtpProfile::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// Why a protected packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpError {
    /// Too short or not RTP/RTCP.
    Malformed,
    /// The authentication tag does not match.
    Authentication,
    /// Already received, or older than the replay window.
    Replay,
}

struct Keys {
    cipher: EncryptingKey,
    salt: [u8; 14],
    auth: hmac::Key,
}

impl Keys {
    /// Derives the session keys for labels `base`, `base + 1`, `base + 2` (RFC 3711 §4.3.1,
    /// key derivation rate 0).
    fn derive(master: &[u8; MASTER_LEN], base: u8) -> Keys {
        let (key, salt) = master.split_at(16);
        let prf = |label: u8, out: &mut [u8]| {
            let mut iv = [0u8; 16];
            iv[..14].copy_from_slice(salt);
            iv[7] ^= label;
            keystream(key, iv, out);
        };
        let mut k = [0u8; 16];
        let mut a = [0u8; 20];
        let mut s = [0u8; 14];
        prf(base, &mut k);
        prf(base + 1, &mut a);
        prf(base + 2, &mut s);
        Keys {
            cipher: ctr_key(&k),
            salt: s,
            auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &a),
        }
    }

    /// XORs the keystream for (ssrc, index) over `data` (RFC 3711 §4.1.1).
    fn apply(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
            iv[4 + i] ^= b;
        }
        for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
            iv[8 + i] ^= b;
        }
        crypt(&self.cipher, iv, data);
    }

    fn tag(&self, parts: &[&[u8]]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.auth);
        for p in parts {
            ctx.update(p);
        }
        ctx.sign()
    }
}

fn ctr_key(key: &[u8]) -> EncryptingKey {
    // A 16-byte key for AES-128 in counter mode is always accepted.
    let unbound = UnboundCipherKey::new(&AES_128, key).expect("16-byte AES-128 key");
    EncryptingKey::ctr(unbound).expect("AES-128-CTR is supported")
}

fn crypt(key: &EncryptingKey, iv: [u8; 16], data: &mut [u8]) {
    if data.is_empty() {
        return;
    }
    // Counter mode accepts any length and any IV.
    key.less_safe_encrypt(data, EncryptionContext::Iv128(iv.into()))
        .expect("AES-CTR encryption");
}

fn keystream(key: &[u8], iv: [u8; 16], out: &mut [u8]) {
    out.fill(0);
    crypt(&ctr_key(key), iv, out);
}

/// Receive-side state of one SSRC.
#[derive(Debug, Clone, Copy)]
struct Replay {
    highest: u64,
    window: u64,
}

impl Replay {
    fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        let age = self.highest - index;
        if age >= REPLAY_WINDOW || self.window & (1 << age) != 0 {
            return Err(SrtpError::Replay);
        }
        Ok(())
    }

    fn accept(&mut self, index: u64) {
        if index > self.highest {
            let shift = index - self.highest;
            self.window = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.window << shift
            };
            self.window |= 1;
            self.highest = index;
        } else {
            self.window |= 1 << (self.highest - index);
        }
    }
}

/// One direction of an SRTP session (ours to protect, or the peer's to unprotect).
pub struct SrtpContext {
    profile: SrtpProfile,
    rtp: Keys,
    rtcp: Keys,
    /// Highest packet index sent or accepted per SSRC.
    rtp_streams: HashMap<u32, Replay>,
    rtcp_streams: HashMap<u32, Replay>,
    srtcp_index: u32,
    /// SRTCP tag length: 80 bits by RFC 4568 for both suites, but some stacks use the
    /// suite's 32-bit tag on SRTCP too; the first packet that verifies only that way
    /// switches both directions to it.
    srtcp_tag_len: usize,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    pub fn new(profile: SrtpProfile, master: &[u8; MASTER_LEN]) -> Self {
        SrtpContext {
            profile,
            rtp: Keys::derive(master, 0),
            rtcp: Keys::derive(master, 3),
            rtp_streams: HashMap::new(),
            rtcp_streams: HashMap::new(),
            srtcp_index: 0,
            srtcp_tag_len: SRTCP_TAG_LEN,
        }
    }

    /// Encrypts and authenticates an RTP packet in place.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let (header_len, seq, ssrc) = rtp_fields(packet).ok_or(SrtpError::Malformed)?;
        let state = self.rtp_streams.entry(ssrc).or_insert(Replay {
            highest: seq as u64,
            window: 0,
        });
        let roc = state.highest >> 16;
        let index = guess_index(roc, state.highest as u16, seq);
        state.highest = state.highest.max(index);
        self.rtp.apply(ssrc, index, &mut packet[header_len..]);
        let roc_bytes = ((index >> 16) as u32).to_be_bytes();
        let tag = self.rtp.tag(&[packet, &roc_bytes]);
        packet.extend_from_slice(&tag.as_ref()[..self.profile.rtp_tag_len()]);
        Ok(())
    }

    /// Authenticates and decrypts an SRTP packet in place (the tag is removed).
    pub fn unprotect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let tag_len = self.profile.rtp_tag_len();
        if packet.len() < 12 + tag_len {
            return Err(SrtpError::Malformed);
        }
        let body_len = packet.len() - tag_len;
        let (header_len, seq, ssrc) =
            rtp_fields(&packet[..body_len]).ok_or(SrtpError::Malformed)?;
        let index = match self.rtp_streams.get(&ssrc) {
            Some(s) => guess_index(s.highest >> 16, s.highest as u16, seq),
            None => seq as u64,
        };
        if let Some(s) = self.rtp_streams.get(&ssrc) {
            s.check(index)?;
        }
        let roc_bytes = ((index >> 16) as u32).to_be_bytes();
        let tag = self.rtp.tag(&[&packet[..body_len], &roc_bytes]);
        if !constant_time_eq(&tag.as_ref()[..tag_len], &packet[body_len..]) {
            return Err(SrtpError::Authentication);
        }
        packet.truncate(body_len);
        self.rtp.apply(ssrc, index, &mut packet[header_len..]);
        self.rtp_streams
            .entry(ssrc)
            .or_insert(Replay {
                highest: index,
                window: 0,
            })
            .accept(index);
        Ok(())
    }

    /// Encrypts and authenticates an RTCP compound packet in place.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        if packet.len() < 8 {
            return Err(SrtpError::Malformed);
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        self.srtcp_index = (self.srtcp_index + 1) & 0x7fff_ffff;
        let index = self.srtcp_index;
        self.rtcp.apply(ssrc, index as u64, &mut packet[8..]);
        packet.extend_from_slice(&(index | 0x8000_0000).to_be_bytes());
        let tag = self.rtcp.tag(&[packet]);
        packet.extend_from_slice(&tag.as_ref()[..self.srtcp_tag_len]);
        Ok(())
    }

    /// Uses the tag length the peer's SRTCP showed (see `srtcp_tag_len`).
    pub fn follow_srtcp_tag_len(&mut self, peer: &SrtpContext) {
        self.srtcp_tag_len = peer.srtcp_tag_len;
    }

    /// Authenticates and decrypts an SRTCP packet in place (index and tag removed).
    pub fn unprotect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let verifies = |len: usize, packet: &[u8]| {
            if packet.len() < 8 + 4 + len {
                return false;
            }
            let body_len = packet.len() - len;
            let tag = self.rtcp.tag(&[&packet[..body_len]]);
            constant_time_eq(&tag.as_ref()[..len], &packet[body_len..])
        };
        let short = self.profile.rtp_tag_len();
        let tag_len = if verifies(self.srtcp_tag_len, packet) {
            self.srtcp_tag_len
        } else if short != self.srtcp_tag_len && verifies(short, packet) {
            short
        } else if packet.len() < 8 + 4 + short {
            return Err(SrtpError::Malformed);
        } else {
            return Err(SrtpError::Authentication);
        };
        self.srtcp_tag_len = tag_len;
        let body_len = packet.len() - tag_len;
        let e_index = u32::from_be_bytes(
            packet[body_len - 4..body_len]
                .try_into()
                .unwrap_or_default(),
        );
        let (encrypted, index) = (e_index & 0x8000_0000 != 0, (e_index & 0x7fff_ffff) as u64);
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        if let Some(s) = self.rtcp_streams.get(&ssrc) {
            s.check(index)?;
        }
        packet.truncate(body_len - 4);
        if encrypted {
            self.rtcp.apply(ssrc, index, &mut packet[8..]);
        }
        self.rtcp_streams
            .entry(ssrc)
            .or_insert(Replay {
                highest: index,
                window: 0,
            })
            .accept(index);
        Ok(())
    }
}

/// Header length, sequence number and SSRC of an RTP packet.
fn rtp_fields(p: &[u8]) -> Option<(usize, u16, u32)> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let mut len = 12 + 4 * (p[0] & 0x0f) as usize;
    if p[0] & 0x10 != 0 {
        let ext = p.get(len..len + 4)?;
        len += 4 + 4 * u16::from_be_bytes([ext[2], ext[3]]) as usize;
    }
    if len > p.len() {
        return None;
    }
    Some((
        len,
        u16::from_be_bytes([p[2], p[3]]),
        u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
    ))
}

/// The packet index for `seq` given the rollover counter and highest sequence number so far
/// (RFC 3711 §3.3.1).
fn guess_index(roc: u64, s_l: u16, seq: u16) -> u64 {
    let v = if s_l < 32768 {
        if seq as i32 - s_l as i32 > 32768 {
            roc.wrapping_sub(1)
        } else {
            roc
        }
    } else if (s_l as i32 - 32768) > seq as i32 {
        roc + 1
    } else {
        roc
    };
    (v << 16) | seq as u64
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn master(key: &str, salt: &str) -> [u8; MASTER_LEN] {
        let mut m = hex(key);
        m.extend(hex(salt));
        m.try_into().unwrap()
    }

    #[test]
    fn key_derivation_matches_rfc3711_appendix_b3() {
        let m = master(
            "E1F97A0D3E018BE0D64FA32C06DE4139",
            "0EC675AD498AFEEBB6960B3AABE6",
        );
        let (key, salt) = m.split_at(16);
        let prf = |label: u8, n: usize| {
            let mut iv = [0u8; 16];
            iv[..14].copy_from_slice(salt);
            iv[7] ^= label;
            let mut out = vec![0u8; n];
            keystream(key, iv, &mut out);
            out
        };
        assert_eq!(prf(0, 16), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(prf(2, 14), hex("30CBBC08863D8C85D49DB34A9AE1"));
        assert_eq!(prf(1, 20), hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"));
        let keys = Keys::derive(&m, 0);
        assert_eq!(keys.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    }

    #[test]
    fn keystream_matches_rfc3711_appendix_b2() {
        let keys = Keys {
            cipher: ctr_key(&hex("2B7E151628AED2A6ABF7158809CF4F3C")),
            salt: hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap(),
            auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &[0; 20]),
        };
        let mut zeros = vec![0u8; 48];
        keys.apply(0, 0, &mut zeros);
        assert_eq!(
            zeros,
            hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0")
        );
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0xca, 0xfe, 0xba, 0xbe];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0x55; 160]);
        p
    }

    #[test]
    fn round_trip_across_the_sequence_wrap_with_both_profiles() {
        for profile in [
            SrtpProfile::AesCm128HmacSha1_80,
            SrtpProfile::AesCm128HmacSha1_32,
        ] {
            let m = [7u8; MASTER_LEN];
            let (mut tx, mut rx) = (SrtpContext::new(profile, &m), SrtpContext::new(profile, &m));
            for seq in (65530..=65535).chain(0..10) {
                let plain = rtp(seq);
                let mut p = plain.clone();
                tx.protect_rtp(&mut p).unwrap();
                assert_eq!(p.len(), plain.len() + profile.rtp_tag_len());
                assert_ne!(p[12..plain.len()], plain[12..], "payload encrypted");
                rx.unprotect_rtp(&mut p).unwrap();
                assert_eq!(p, plain, "seq {seq}");
            }
            // After the wrap the index carries the rollover counter.
            assert_eq!(rx.rtp_streams[&0xcafebabe].highest, (1 << 16) + 9);
        }
    }

    #[test]
    fn tampering_replay_and_wrong_keys_are_refused() {
        let m = [7u8; MASTER_LEN];
        let (mut tx, mut rx) = (
            SrtpContext::new(SrtpProfile::AesCm128HmacSha1_80, &m),
            SrtpContext::new(SrtpProfile::AesCm128HmacSha1_80, &m),
        );
        let mut p = rtp(1);
        tx.protect_rtp(&mut p).unwrap();
        let mut bad = p.clone();
        bad[20] ^= 1;
        assert_eq!(rx.unprotect_rtp(&mut bad), Err(SrtpError::Authentication));
        let mut ok = p.clone();
        rx.unprotect_rtp(&mut ok).unwrap();
        let mut again = p.clone();
        assert_eq!(rx.unprotect_rtp(&mut again), Err(SrtpError::Replay));
        let mut other = SrtpContext::new(SrtpProfile::AesCm128HmacSha1_80, &[8; MASTER_LEN]);
        let mut q = rtp(2);
        tx.protect_rtp(&mut q).unwrap();
        assert_eq!(other.unprotect_rtp(&mut q), Err(SrtpError::Authentication));
        // Reordered packets inside the window are fine.
        let mut p4 = rtp(4);
        let mut p3 = rtp(3);
        tx.protect_rtp(&mut p3).unwrap();
        tx.protect_rtp(&mut p4).unwrap();
        rx.unprotect_rtp(&mut p4).unwrap();
        rx.unprotect_rtp(&mut p3).unwrap();
    }

    #[test]
    fn srtcp_with_a_32_bit_tag_is_accepted_and_answered_alike() {
        let m = [9u8; MASTER_LEN];
        let profile = SrtpProfile::AesCm128HmacSha1_32;
        let (mut peer, mut rx) = (SrtpContext::new(profile, &m), SrtpContext::new(profile, &m));
        peer.srtcp_tag_len = 4;
        let plain: Vec<u8> = [0x81, 201, 0, 7, 1, 2, 3, 4]
            .iter()
            .copied()
            .chain([0xab; 24])
            .collect();
        let mut p = plain.clone();
        peer.protect_rtcp(&mut p).unwrap();
        assert_eq!(p.len(), plain.len() + 4 + 4);
        rx.unprotect_rtcp(&mut p).unwrap();
        assert_eq!(p, plain);
        let mut tx = SrtpContext::new(profile, &m);
        tx.follow_srtcp_tag_len(&rx);
        let mut q = plain.clone();
        tx.protect_rtcp(&mut q).unwrap();
        assert_eq!(q.len(), plain.len() + 4 + 4);
        // The 80-bit profile never takes the short form.
        let (mut a, mut b) = (
            SrtpContext::new(SrtpProfile::AesCm128HmacSha1_80, &m),
            SrtpContext::new(SrtpProfile::AesCm128HmacSha1_80, &m),
        );
        a.srtcp_tag_len = 4;
        let mut r = plain.clone();
        a.protect_rtcp(&mut r).unwrap();
        assert_eq!(b.unprotect_rtcp(&mut r), Err(SrtpError::Authentication));
    }

    #[test]
    fn rtcp_round_trip() {
        let m = [9u8; MASTER_LEN];
        let (mut tx, mut rx) = (
            SrtpContext::new(SrtpProfile::AesCm128HmacSha1_32, &m),
            SrtpContext::new(SrtpProfile::AesCm128HmacSha1_32, &m),
        );
        let plain: Vec<u8> = [0x81, 201, 0, 7, 1, 2, 3, 4]
            .iter()
            .copied()
            .chain([0xab; 24])
            .collect();
        let mut p = plain.clone();
        tx.protect_rtcp(&mut p).unwrap();
        assert_eq!(p.len(), plain.len() + 4 + 10);
        rx.unprotect_rtcp(&mut p).unwrap();
        assert_eq!(p, plain);
        let mut p2 = plain.clone();
        tx.protect_rtcp(&mut p2).unwrap();
        let replay = p2.clone();
        rx.unprotect_rtcp(&mut p2).unwrap();
        assert_eq!(
            rx.unprotect_rtcp(&mut replay.clone()),
            Err(SrtpError::Replay)
        );
    }
}
