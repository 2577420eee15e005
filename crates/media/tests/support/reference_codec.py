#!/usr/bin/env python3
"""Reference codecs for phonebridge's cross-check tests: spandsp's G.722 and libopus, the
libraries real softphones and PBXs use, called through ctypes (both come with baresip-core,
which the test command installs).

usage: reference_codec.py MODE < input > output
  g722-encode   16 kHz s16le PCM        -> G.722 bytes (64 kbit/s)
  g722-decode   G.722 bytes             -> 16 kHz s16le PCM
  opus-encode   48 kHz s16le PCM mono   -> packets, each prefixed by its u16le length (20 ms)
  opus-decode   length-prefixed packets -> 48 kHz s16le PCM mono
"""
import ctypes
import ctypes.util
import struct
import sys


def lib(name, fallback):
    path = ctypes.util.find_library(name) or fallback
    return ctypes.CDLL(path)


def g722(mode, data):
    sp = lib("spandsp", "libspandsp.so.2")
    sp.g722_encode_init.restype = ctypes.c_void_p
    sp.g722_decode_init.restype = ctypes.c_void_p
    if mode == "g722-encode":
        state = sp.g722_encode_init(None, 64000, 0)
        n = len(data) // 2
        pcm = (ctypes.c_int16 * n).from_buffer_copy(data[: n * 2])
        out = (ctypes.c_uint8 * n)()
        m = sp.g722_encode(ctypes.c_void_p(state), out, pcm, n)
        return bytes(out[:m])
    state = sp.g722_decode_init(None, 64000, 0)
    n = len(data)
    codes = (ctypes.c_uint8 * n).from_buffer_copy(data)
    out = (ctypes.c_int16 * (2 * n))()
    m = sp.g722_decode(ctypes.c_void_p(state), out, codes, n)
    return bytes(out)[: m * 2]


def opus(mode, data):
    op = lib("opus", "libopus.so.0")
    err = ctypes.c_int()
    if mode == "opus-encode":
        op.opus_encoder_create.restype = ctypes.c_void_p
        enc = op.opus_encoder_create(48000, 1, 2048, ctypes.byref(err))  # OPUS_APPLICATION_VOIP
        assert err.value == 0
        # The settings phonebridge's encoder uses: 24 kbit/s, complexity 5, in-band FEC
        # for 5 % loss (OPUS_SET_BITRATE, _COMPLEXITY, _INBAND_FEC, _PACKET_LOSS_PERC).
        for request, value in ((4002, 24000), (4010, 5), (4012, 1), (4014, 5)):
            assert op.opus_encoder_ctl(ctypes.c_void_p(enc), request, ctypes.c_int(value)) == 0
        out = bytearray()
        buf = (ctypes.c_uint8 * 1500)()
        for i in range(0, len(data) - 1919, 1920):
            pcm = (ctypes.c_int16 * 960).from_buffer_copy(data[i : i + 1920])
            n = op.opus_encode(ctypes.c_void_p(enc), pcm, 960, buf, 1500)
            assert n > 0
            out += struct.pack("<H", n) + bytes(buf[:n])
        return bytes(out)
    op.opus_decoder_create.restype = ctypes.c_void_p
    dec = op.opus_decoder_create(48000, 1, ctypes.byref(err))
    assert err.value == 0
    out = bytearray()
    pcm = (ctypes.c_int16 * 5760)()
    i = 0
    while i + 2 <= len(data):
        (n,) = struct.unpack_from("<H", data, i)
        packet = (ctypes.c_uint8 * n).from_buffer_copy(data[i + 2 : i + 2 + n])
        m = op.opus_decode(ctypes.c_void_p(dec), packet, n, pcm, 5760, 0)
        assert m > 0
        out += bytes(pcm)[: m * 2]
        i += 2 + n
    return bytes(out)


def main():
    mode = sys.argv[1]
    data = sys.stdin.buffer.read()
    out = g722(mode, data) if mode.startswith("g722") else opus(mode, data)
    sys.stdout.buffer.write(out)


if __name__ == "__main__":
    main()
