"""Hostile clients for tests/net/abuse_test.sh (standard library only).

  abuse.py slowloris PORT N SECONDS   N connections trickle a request head; prints how many
                                      the server closed (or answered 408) within SECONDS
  abuse.py conns PORT N               opens N connections at once; prints accepted/refused
  abuse.py rapid_reset PORT N         HEADERS+RST_STREAM N times on one h2 connection;
                                      prints what the server did (goaway / closed / open)
  abuse.py continuation PORT N        HEADERS without END_HEADERS then N CONTINUATIONs
  abuse.py ping_flood PORT N          N PINGs without reading the ACKs
  abuse.py settings_flood PORT N      N SETTINGS frames without reading
  abuse.py hpack_bomb PORT N          one header indexed into the dynamic table, then
                                      referenced N times (decodes to megabytes)
  abuse.py pipeline PORT N            N pipelined GETs without reading, then reads all
"""
import socket, struct, sys, time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload

def lit(idx, val):  # literal header field without indexing, indexed name (HPACK 6.2.2)
    v = val.encode()
    assert len(v) < 127
    return bytes([idx & 0x0F]) + bytes([len(v)]) + v

GET_HEALTHZ = bytes([0x82, 0x86]) + bytes([0x41, 1]) + b"x" + lit(4, "/healthz")

def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def read_frames(s, seconds):
    """Reads frames until close or timeout; returns (types seen, closed)."""
    s.settimeout(seconds)
    buf, types, closed = b"", [], False
    end = time.time() + seconds
    try:
        while time.time() < end:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            buf += d
            while len(buf) >= 9:
                n = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + n:
                    break
                types.append(buf[3])
                buf = buf[9 + n:]
            if 7 in types:
                break
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        pass
    return types, closed

def h2_open(port):
    s = connect(port)
    s.sendall(PREFACE + frame(4, 0, 0))
    return s

def verdict(s, seconds=5):
    types, closed = read_frames(s, seconds)
    if 7 in types:
        return "goaway"
    return "closed" if closed else "open"

def main():
    mode, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if mode == "slowloris":
        secs = float(sys.argv[4])
        socks = []
        for _ in range(n):
            s = connect(port)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        end = time.time() + secs
        cut = set()
        while time.time() < end and len(cut) < n:
            for i, s in enumerate(socks):
                if i in cut:
                    continue
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                    s.settimeout(0.01)
                    d = s.recv(4096)
                    if not d or b" 408 " in d:
                        cut.add(i)
                except socket.timeout:
                    pass
                except (ConnectionResetError, BrokenPipeError):
                    cut.add(i)
            time.sleep(0.1)
        print(len(cut))
    elif mode == "conns":
        socks, refused = [], 0
        for _ in range(n):
            try:
                socks.append(connect(port))
            except OSError:
                refused += 1
        time.sleep(0.5)
        for s in socks:
            s.setblocking(False)
            try:
                d = s.recv(4096)
                if not d or b" 503 " in d:
                    refused += 1
            except BlockingIOError:
                pass  # open and silent: accepted
            except ConnectionResetError:
                refused += 1
        print(n - refused, refused)
        for s in socks:
            s.close()
    elif mode == "rapid_reset":
        s = h2_open(port)
        out = b""
        for i in range(n):
            sid = 2 * i + 1
            out += frame(1, 0x5, sid, GET_HEALTHZ) + frame(3, 0, sid, struct.pack(">I", 8))
            if len(out) > 65536:
                try:
                    s.sendall(out)
                except (BrokenPipeError, ConnectionResetError):
                    break
                out = b""
        try:
            s.sendall(out)
        except (BrokenPipeError, ConnectionResetError):
            pass
        print(verdict(s))
    elif mode == "continuation":
        s = h2_open(port)
        data = frame(1, 0x1, 1, bytes([0x82]))  # END_STREAM, no END_HEADERS
        data += b"".join(frame(9, 0, 1, lit(15, "x-pad-%d" % i)[:0] + bytes([0x86])) for i in range(n))
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        print(verdict(s))
    elif mode == "ping_flood":
        s = h2_open(port)
        try:
            for _ in range(n // 100):
                s.sendall(frame(6, 0, 0, b"12345678") * 100)
        except (BrokenPipeError, ConnectionResetError):
            pass
        print(verdict(s, 3))
    elif mode == "settings_flood":
        s = h2_open(port)
        try:
            for _ in range(n // 100):
                s.sendall(frame(4, 0, 0, struct.pack(">HI", 3, 100)) * 100)
        except (BrokenPipeError, ConnectionResetError):
            pass
        print(verdict(s, 3))
    elif mode == "hpack_bomb":
        s = h2_open(port)
        big = b"v" * 4000
        # literal with incremental indexing, new name: adds "x-bomb: vvvv..." (index 62)
        first = bytes([0x40, 6]) + b"x-bomb" + bytes([0x7F]) + bytes([(4000 - 127) % 128 | 0x80, (4000 - 127) // 128]) + big
        block = GET_HEALTHZ + first + bytes([0x80 | 62]) * n   # then n references
        payload = block[:16000]
        rest = block[16000:]
        data = frame(1, 0x1 | (0x4 if not rest else 0), 1, payload)
        while rest:
            chunk, rest = rest[:16000], rest[16000:]
            data += frame(9, 0x4 if not rest else 0, 1, chunk)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        types, closed = read_frames(s, 3)
        # HEADERS (1) means we answered (431); RST_STREAM (3) or GOAWAY (7) also contain it
        print("answered" if 1 in types else "reset" if 3 in types else "goaway" if 7 in types
              else "closed" if closed else "open")
    elif mode == "pipeline":
        s = connect(port)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * n)
        got, buf = 0, b""
        s.settimeout(5)
        try:
            while got < n:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
                got = buf.count(b"HTTP/1.1 200 OK")
        except socket.timeout:
            pass
        print(got)

main()
