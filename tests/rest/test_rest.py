#!/usr/bin/env python3
"""REST service tests over real sockets (issue 2, item 4).

Runs tests/rest/rest_harness.c (the real service, a scripted fake VM) and
drives it with curl over TCP and UNIX sockets and with raw bytes from Python
sockets: malformed, slow, huge, pipelined and keep-alive requests.

    python3 tests/rest/test_rest.py build/rest/rest_harness
"""
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HARNESS = None
INSPECT = {"cpus": 2, "memory": 2048, "devices": [{"kind": "virtio-rng"}]}
ALL_STATES = ["Starting", "Running", "Pausing", "Paused", "Resuming", "Stopping",
              "Stopped", "Error"]


class Harness:
    """One rest_harness process; its stdin scripts the fake VM."""

    def __init__(self, *args, idle_ms=None, max_conns=None, umask=None, wrap=()):
        argv = [*wrap, HARNESS, *args]
        if idle_ms is not None:
            argv += [str(idle_ms), str(max_conns)]
        self.log = tempfile.TemporaryFile()
        pre = (lambda: os.umask(umask)) if umask is not None else None
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1, preexec_fn=pre)
        self.ready = self.proc.stdout.readline().strip()
        fields = self.ready.split()
        self.port = int(fields[1]) if fields[:1] == ["READY"] and fields[1].isdigit() else None

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.log.seek(0)
        log = self.log.read().decode(errors="replace")
        self.log.close()
        self.log_text = log
        # 0: served and stopped; 1: refused to start. Anything else is a
        # crash or a sanitizer report.
        if rc not in (0, 1):
            raise AssertionError("rest_harness exited with %d:\n%s" % (rc, log[-4000:]))
        return rc


def curl(*args, unix=None, url_base="http://127.0.0.1"):
    """Run curl; return (status, headers, body) of the final response."""
    argv = ["curl", "-sS", "-i", "--noproxy", "*", "--max-time", "10"]
    if unix:
        argv += ["--unix-socket", unix]
    out = subprocess.run(argv + list(args), capture_output=True, check=True).stdout
    # Skip interim 1xx responses (100 Continue).
    while True:
        head, _, rest = out.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        if status >= 200:
            break
        out = rest
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    return status, headers, rest


class Raw:
    """A raw client connection reading HTTP/1.1 responses by hand."""

    def __init__(self, port=None, unix=None, timeout=5):
        if unix:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.settimeout(timeout)
            self.s.connect(unix)
        else:
            self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def response(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        version, status = lines[0].split(b" ")[:2]
        assert version == b"HTTP/1.1", lines[0]
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode()] = v.strip().decode()
        n = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return int(status), headers, body

    def closed_by_peer(self):
        """True when the server closed (EOF or reset) with nothing more to read."""
        try:
            return self.buf == b"" and self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def post(body, extra=b""):
    if isinstance(body, str):
        body = body.encode()
    return (b"POST /vm/state HTTP/1.1\r\nHost: localhost\r\n" + extra +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


GET_STATE = b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\n\r\n"


class TcpService(unittest.TestCase):
    """One server for the whole class; each test sets the state it needs."""

    @classmethod
    def setUpClass(cls):
        cls.h = Harness("tcp", "127.0.0.1", "0")
        assert cls.h.port, cls.h.ready
        cls.base = "http://127.0.0.1:%d" % cls.h.port

    @classmethod
    def tearDownClass(cls):
        cls.h.close()

    def setUp(self):
        self.assertEqual(self.h.cmd("state Running"), "OK")

    def curl(self, path, *args):
        return curl(*args, self.base + path)

    def raw(self, **kw):
        return Raw(self.h.port, **kw)

    def post_state(self, action):
        return self.curl("/vm/state", "-X", "POST", "-d", json.dumps({"state": action}))

    def assert_alive(self):
        status, _, body = self.curl("/vm/state")
        self.assertEqual(status, 200)
        self.assertIn("state", json.loads(body))

    # -- endpoints --

    def test_get_state_is_vfkit_object(self):
        status, headers, body = self.curl("/vm/state")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(json.loads(body), {
            "state": "VirtualMachineStateRunning", "canStart": False, "canPause": True,
            "canResume": False, "canStop": True, "canHardStop": True})

    def test_get_state_follows_every_state(self):
        for st in ALL_STATES:
            self.assertEqual(self.h.cmd("state " + st), "OK")
            status, _, body = self.curl("/vm/state")
            self.assertEqual(status, 200)
            doc = json.loads(body)
            self.assertEqual(doc["state"], "VirtualMachineState" + st)
            self.assertEqual(doc["canPause"], st == "Running")
            self.assertEqual(doc["canResume"], st == "Paused")
            self.assertEqual(doc["canStop"], st == "Running")
            self.assertEqual(doc["canHardStop"], st != "Stopped")
            self.assertFalse(doc["canStart"])

    def test_stop_goes_through_stopping_to_stopped(self):
        status, _, body = self.post_state("Stop")
        self.assertEqual((status, json.loads(body)),
                         (200, {"state": "VirtualMachineStateStopping"}))
        self.assertEqual(json.loads(self.curl("/vm/state")[2])["state"],
                         "VirtualMachineStateStopping")
        self.assertEqual(self.h.cmd("settle"), "OK Stopped")
        self.assertEqual(json.loads(self.curl("/vm/state")[2])["state"],
                         "VirtualMachineStateStopped")
        status, _, body = self.post_state("Stop")
        self.assertEqual(status, 409)
        self.assertIn("Stop", json.loads(body)["error"])

    def test_pause_then_resume(self):
        status, _, body = self.post_state("Pause")
        self.assertEqual((status, json.loads(body)["state"]), (200, "VirtualMachineStatePausing"))
        self.assertEqual(self.h.cmd("settle"), "OK Paused")
        doc = json.loads(self.curl("/vm/state")[2])
        self.assertTrue(doc["canResume"])
        self.assertFalse(doc["canPause"])
        status, _, body = self.post_state("Resume")
        self.assertEqual((status, json.loads(body)["state"]),
                         (200, "VirtualMachineStateResuming"))
        self.assertEqual(self.h.cmd("settle"), "OK Running")

    def test_hard_stop(self):
        status, _, body = self.post_state("HardStop")
        self.assertEqual((status, json.loads(body)), (200, {"state": "VirtualMachineStateStopped"}))
        self.assertEqual(self.h.cmd("get"), "OK Stopped")

    def test_refused_request_is_409(self):
        self.h.cmd("state Stopped")
        for action in ("Pause", "Resume", "Stop", "HardStop"):
            status, headers, body = self.post_state(action)
            self.assertEqual(status, 409, action)
            self.assertEqual(headers["content-type"], "application/json")
            self.assertIn("error", json.loads(body))
        self.assertEqual(self.h.cmd("get"), "OK Stopped")

    def test_failed_request_is_500(self):
        self.h.cmd("fail 5")
        status, _, body = self.post_state("Stop")
        self.assertEqual(status, 500)
        self.assertIn("error", json.loads(body))
        self.assertEqual(self.h.cmd("get"), "OK Running")

    def test_bad_bodies_are_400_and_reach_no_vm(self):
        before = self.h.cmd("requests")
        bodies = [b"", b"{", b"not json", b"[]", b'"Stop"', b"{}", b'{"State":"Stop"}',
                  b'{"state":1}', b'{"state":null}', b'{"state":"Reboot"}', b'{"state":"stop"}',
                  b'{"state":"Stop","state":"Stop"}', b'{"state":"Stop"} trailing',
                  b'{"state":"\xff\xfe"}', b'\x00\x01\x02']
        r = self.raw()
        for b in bodies:
            r.send(post(b))
            status, headers, body = r.response()
            self.assertEqual(status, 400, b)
            self.assertIn("error", json.loads(body), b)
            self.assertNotIn("connection", headers)  # a bad body keeps the connection
        r.close()
        self.assertEqual(self.h.cmd("requests"), before)
        self.assertEqual(self.h.cmd("get"), "OK Running")

    def test_extra_fields_in_body_are_ignored(self):
        status, _, body = self.curl("/vm/state", "-X", "POST", "-d",
                                    '{"state":"Pause","force":true}')
        self.assertEqual((status, json.loads(body)["state"]), (200, "VirtualMachineStatePausing"))

    def test_post_without_content_length_is_411_and_keeps_connection(self):
        r = self.raw()
        r.send(b"POST /vm/state HTTP/1.1\r\nHost: localhost\r\n\r\n" + GET_STATE)
        status, _, body = r.response()
        self.assertEqual(status, 411)
        self.assertIn("error", json.loads(body))
        self.assertEqual(r.response()[0], 200)
        r.close()

    def test_inspect(self):
        status, headers, body = self.curl("/vm/inspect")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(json.loads(body), INSPECT)

    def test_unknown_paths_are_404(self):
        for path in ("/", "/vm", "/vm/", "/vm/state/", "/vm/statex", "/vm/inspect/x",
                     "/VM/STATE", "/vm//state"):
            status, _, body = self.curl(path)
            self.assertEqual(status, 404, path)
            self.assertIn("error", json.loads(body))
        self.assertEqual(self.curl("/nope", "-X", "POST", "-d", "{}")[0], 404)

    def test_wrong_methods_are_405_with_allow(self):
        before = self.h.cmd("requests")
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
            status, headers, body = self.curl("/vm/state", "-X", method)
            self.assertEqual((status, headers.get("allow")), (405, "GET, HEAD, POST"), method)
            self.assertIn("error", json.loads(body))
        status, headers, _ = self.curl("/vm/inspect", "-X", "POST", "-d", '{"state":"Stop"}')
        self.assertEqual((status, headers.get("allow")), (405, "GET, HEAD"))
        self.assertEqual(self.h.cmd("get"), "OK Running")
        self.assertEqual(self.h.cmd("requests"), before)

    def test_head_has_length_but_no_body(self):
        r = self.raw()
        r.send(b"HEAD /vm/state HTTP/1.1\r\nHost: localhost\r\n\r\n" + GET_STATE)
        status, headers, body = r.response(head_only=True)
        self.assertEqual(status, 200)
        self.assertGreater(int(headers["content-length"]), 0)
        # The next response must start right after the head: no stray body.
        status, _, body = r.response()
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["content-length"]), len(body))
        r.close()

    def test_query_string_is_ignored_for_routing(self):
        self.assertEqual(self.curl("/vm/state?verbose=1")[0], 200)

    # -- connection handling --

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        r = self.raw()
        for _ in range(20):
            r.send(GET_STATE)
            status, headers, _ = r.response()
            self.assertEqual(status, 200)
            self.assertNotIn("connection", headers)
        r.send(b"GET /vm/inspect HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertEqual(json.loads(r.response()[2]), INSPECT)
        r.close()

    def test_connection_close_is_honoured(self):
        r = self.raw()
        r.send(b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" + GET_STATE)
        status, headers, _ = r.response()
        self.assertEqual((status, headers["connection"]), (200, "close"))
        self.assertTrue(r.closed_by_peer())  # the pipelined second request is not answered
        r.close()

    def test_http10_closes_by_default(self):
        r = self.raw()
        r.send(b"GET /vm/state HTTP/1.0\r\n\r\n")
        status, headers, _ = r.response()
        self.assertEqual((status, headers["connection"]), (200, "close"))
        self.assertTrue(r.closed_by_peer())
        r.close()

    def test_http10_keep_alive(self):
        r = self.raw()
        for _ in range(3):
            r.send(b"GET /vm/state HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _ = r.response()
            self.assertEqual((status, headers["connection"]), (200, "keep-alive"))
        r.close()

    def test_pipelined_requests_are_answered_in_order(self):
        r = self.raw()
        r.send(GET_STATE + post('{"state":"Pause"}') + GET_STATE +
               b"GET /vm/inspect HTTP/1.1\r\nHost: localhost\r\n\r\n" +
               b"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n" + post('{"state":"bad"}') +
               b"\r\n" + GET_STATE)  # a stray CRLF between requests is allowed
        answers = [r.response() for _ in range(7)]
        self.assertEqual([a[0] for a in answers], [200, 200, 200, 200, 404, 400, 200])
        self.assertEqual(json.loads(answers[0][2])["state"], "VirtualMachineStateRunning")
        self.assertEqual(json.loads(answers[1][2]), {"state": "VirtualMachineStatePausing"})
        self.assertEqual(json.loads(answers[2][2])["state"], "VirtualMachineStatePausing")
        self.assertEqual(json.loads(answers[3][2]), INSPECT)
        r.close()

    def test_many_pipelined_requests_from_a_client_that_reads_late(self):
        # More output than the server buffers before it stops reading: it
        # must resume once the client reads, and lose nothing.
        n = 3000
        r = self.raw(timeout=20)
        sender = threading.Thread(target=r.send, args=(GET_STATE * n,))
        sender.start()
        time.sleep(0.5)
        for _ in range(n):
            self.assertEqual(r.response()[0], 200)
        sender.join()
        r.close()

    def test_request_sent_byte_by_byte(self):
        r = self.raw()
        for b in post('{"state":"Pause"}'):
            r.send(bytes([b]))
            time.sleep(0.002)
        self.assertEqual(json.loads(r.response()[2]), {"state": "VirtualMachineStatePausing"})
        r.close()

    def test_lf_only_line_endings_are_accepted(self):
        r = self.raw()
        r.send(b"GET /vm/state HTTP/1.1\nHost: localhost\n\n")
        self.assertEqual(r.response()[0], 200)
        r.close()

    def test_expect_100_continue(self):
        # curl sends "Expect: 100-continue" for bodies over 1 KiB and waits
        # a second for the interim answer unless the server sends it.
        body = '{"state":"Pause"}' + " " * 2000
        t = time.monotonic()
        status, _, out = self.curl("/vm/state", "-X", "POST", "-H", "Expect: 100-continue",
                                   "--data-binary", body)
        self.assertEqual((status, json.loads(out)["state"]), (200, "VirtualMachineStatePausing"))
        self.assertLess(time.monotonic() - t, 0.9)

    # -- malformed input: answered, closed, and the service lives on --

    def check_rejected(self, data, status):
        r = self.raw()
        r.send(data)
        got, headers, body = r.response()
        self.assertEqual(got, status, data[:80])
        self.assertEqual(headers.get("connection"), "close", data[:80])
        self.assertIn("error", json.loads(body))
        self.assertTrue(r.closed_by_peer(), data[:80])
        r.close()
        self.assert_alive()

    def test_malformed_requests_are_400(self):
        cases = [
            b"GARBAGE\r\n\r\n",
            b"GET /vm/state\r\n\r\n",
            b"GET  /vm/state HTTP/1.1\r\nHost: localhost\r\n\r\n",
            b"GET vm/state HTTP/1.1\r\nHost: localhost\r\n\r\n",
            b"GET http://x/vm/state HTTP/1.1\r\nHost: localhost\r\n\r\n",
            b"GET /vm/state HTTP/1.1 \r\nHost: localhost\r\n\r\n",
            b"GET /vm/state HTTP/1\r\nHost: localhost\r\n\r\n",
            b"GET /vm/state http/1.1\r\nHost: localhost\r\n\r\n",
            b"G(T /vm/state HTTP/1.1\r\nHost: localhost\r\n\r\n",
            b"GET /vm/st\x00te HTTP/1.1\r\nHost: localhost\r\n\r\n",
            b"GET /vm/state HTTP/1.1\r\n\r\n",  # no Host
            b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\nHost: y\r\n\r\n",
            b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\nNo colon here\r\n\r\n",
            b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\nBad Name: v\r\n\r\n",
            b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\nName : v\r\n\r\n",
            b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\nX: a\x00b\r\n\r\n",
            b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\nX: a\rb\r\n\r\n",
            b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\nX: a\r\n folded\r\n\r\n",
            b"POST /vm/state HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n",
            b"POST /vm/state HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n",
            b"POST /vm/state HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1 7\r\n\r\n",
            b"POST /vm/state HTTP/1.1\r\nHost: localhost\r\nContent-Length:\r\n\r\n",
            b"POST /vm/state HTTP/1.1\r\nHost: localhost\r\nContent-Length: 17\r\n"
            b"Content-Length: 17\r\n\r\n{\"state\":\"Stop\"}",
            b"POST /vm/state HTTP/1.1\r\nHost: localhost\r\nContent-Length: 17\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            bytes(range(256)) * 4,
        ]
        before = self.h.cmd("requests")
        for data in cases:
            self.check_rejected(data, 400)
        self.assertEqual(self.h.cmd("requests"), before)

    def test_other_http_versions_are_505(self):
        self.check_rejected(b"GET /vm/state HTTP/2.0\r\nHost: localhost\r\n\r\n", 505)
        self.check_rejected(b"GET /vm/state HTTP/0.9\r\n\r\n", 505)

    def test_chunked_body_is_411(self):
        self.check_rejected(b"POST /vm/state HTTP/1.1\r\nHost: localhost\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n11\r\n{\"state\":\"Stop\"}\r\n0\r\n\r\n",
                            411)
        self.assertEqual(self.h.cmd("get"), "OK Running")

    # -- oversized input --

    def test_huge_head_is_413(self):
        self.check_rejected(b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
                            413)
        self.check_rejected(b"GET /" + b"a" * 10000, 413)
        many = b"".join(b"X%d: v\r\n" % i for i in range(100))
        self.check_rejected(b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\n" + many + b"\r\n", 413)

    def test_head_just_under_the_limit_is_served(self):
        req = b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\nX: \r\n\r\n"
        pad = 8192 - len(req)
        req = req.replace(b"X: ", b"X: " + b"a" * pad)
        self.assertEqual(len(req), 8192)
        r = self.raw()
        r.send(req)
        self.assertEqual(r.response()[0], 200)
        r.close()

    def test_huge_declared_body_is_413_before_it_is_sent(self):
        for cl in (b"65537", b"1000000000", b"99999999999999999999999999999999"):
            self.check_rejected(b"POST /vm/state HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + cl +
                                b"\r\n\r\n", 413)

    def test_huge_body_from_curl_is_413(self):
        with tempfile.NamedTemporaryFile() as f:
            f.write(b'{"state":"Stop"}' + b" " * 200000)
            f.flush()
            status, headers, body = self.curl("/vm/state", "-X", "POST",
                                              "--data-binary", "@" + f.name)
        self.assertEqual(status, 413)
        self.assertIn("error", json.loads(body))
        self.assertEqual(self.h.cmd("get"), "OK Running")

    def test_body_at_the_limit_is_served(self):
        body = b'{"state":"Pause"}'
        body += b" " * (65536 - len(body))
        r = self.raw()
        r.send(post(body))
        status, _, out = r.response()
        self.assertEqual((status, json.loads(out)["state"]), (200, "VirtualMachineStatePausing"))
        r.close()

    def test_flood_without_newline_is_413(self):
        r = self.raw()
        try:
            r.send(b"A" * 1000000)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close while we still send; the answer came first
        status, headers, _ = r.response()
        self.assertEqual((status, headers["connection"]), (413, "close"))
        r.close()
        self.assert_alive()

    def test_client_vanishing_mid_request(self):
        for data in (b"GET /vm/sta", post('{"state":"Stop"}')[:-5], GET_STATE * 50):
            r = self.raw()
            r.send(data)
            r.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            r.close()  # with linger 0: a reset
        self.assert_alive()
        self.assertEqual(self.h.cmd("get"), "OK Running")


class Timeouts(unittest.TestCase):
    """A server with a 1 s idle timeout and 4 connections at most."""

    def setUp(self):
        self.h = Harness("tcp", "127.0.0.1", "0", idle_ms=1000, max_conns=4)
        self.assertTrue(self.h.port, self.h.ready)

    def tearDown(self):
        self.h.close()

    def test_slow_loris_gets_408_and_does_not_block_others(self):
        r = Raw(self.h.port)
        r.send(b"GET /vm/state HTTP/1.1\r\n")
        t0 = time.monotonic()
        other = Raw(self.h.port)
        other.send(GET_STATE)
        self.assertEqual(other.response()[0], 200)
        self.assertLess(time.monotonic() - t0, 0.5)
        other.close()
        # Trickle a header byte every 100 ms: progress must not extend the deadline.
        while time.monotonic() - t0 < 4:
            try:
                r.send(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
            if select.select([r.s], [], [], 0.1)[0]:
                break
        elapsed = time.monotonic() - t0
        status, headers, body = r.response()
        self.assertEqual((status, headers["connection"]), (408, "close"))
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 2.5)
        r.close()

    def test_idle_connection_is_closed_silently(self):
        r = Raw(self.h.port)
        t0 = time.monotonic()
        self.assertTrue(r.closed_by_peer())
        self.assertGreater(time.monotonic() - t0, 0.8)
        r.close()

    def test_keep_alive_connection_is_closed_after_idle_timeout(self):
        r = Raw(self.h.port)
        r.send(GET_STATE)
        self.assertEqual(r.response()[0], 200)
        t0 = time.monotonic()
        self.assertTrue(r.closed_by_peer())
        self.assertGreater(time.monotonic() - t0, 0.8)
        r.close()

    def test_connection_limit_evicts_the_stalest(self):
        idle = []
        for _ in range(4):
            idle.append(Raw(self.h.port))
            time.sleep(0.05)
        status, _, _ = curl("http://127.0.0.1:%d/vm/state" % self.h.port)
        self.assertEqual(status, 200)
        idle[0].s.settimeout(0.5)
        self.assertTrue(idle[0].closed_by_peer())  # the oldest made room
        for r in idle:
            r.close()

    def test_many_hostile_connections_do_not_starve_a_client(self):
        hostile = []
        for i in range(40):
            r = Raw(self.h.port)
            r.send(b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\n")
            hostile.append(r)
        status, _, _ = curl("http://127.0.0.1:%d/vm/state" % self.h.port)
        self.assertEqual(status, 200)
        for r in hostile:
            r.close()


class Lifecycle(unittest.TestCase):
    def test_tcp_refused_after_stop(self):
        h = Harness("tcp", "127.0.0.1", "0")
        port = h.port
        self.assertEqual(curl("http://127.0.0.1:%d/vm/state" % port)[0], 200)
        idle = Raw(port)
        partial = Raw(port)
        partial.send(b"GET /vm/state HTTP/1.1\r\n")
        t0 = time.monotonic()
        self.assertEqual(h.cmd("stop"), "STOPPED")
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertTrue(idle.closed_by_peer())
        self.assertTrue(partial.closed_by_peer())
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        self.assertEqual(h.close(), 0)

    def test_none_scheme_starts_nothing(self):
        h = Harness("none")
        self.assertEqual(h.ready, "READY none")
        self.assertEqual(h.close(), 0)

    def test_tcp_host_name_is_resolved(self):
        h = Harness("tcp", "localhost", "0")
        self.assertTrue(h.port, h.ready)
        status, _, body = curl("http://localhost:%d/vm/state" % h.port)
        self.assertEqual(status, 200)
        self.assertEqual(h.close(), 0)

    def test_tcp_ipv6_literal_bracketed_or_not(self):
        try:
            probe = socket.socket(socket.AF_INET6)
            probe.bind(("::1", 0))
            probe.close()
        except OSError:
            self.skipTest("no IPv6 loopback here")
        for host in ("::1", "[::1]"):
            h = Harness("tcp", host, "0")
            self.assertTrue(h.port, h.ready)
            self.assertEqual(curl("-g", "http://[::1]:%d/vm/state" % h.port)[0], 200)
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", h.port), timeout=2)
            self.assertEqual(h.close(), 0)

    def test_tcp_port_in_use_fails(self):
        h = Harness("tcp", "127.0.0.1", "0")
        other = Harness("tcp", "127.0.0.1", str(h.port))
        self.assertEqual(other.ready, "FAIL 98")  # EADDRINUSE
        self.assertEqual(other.close(), 1)
        self.assertEqual(curl("http://127.0.0.1:%d/vm/state" % h.port)[0], 200)
        h.close()

    def test_unresolvable_host_fails(self):
        h = Harness("tcp", "no-such-host.invalid", "0")
        self.assertTrue(h.ready.startswith("FAIL"), h.ready)
        self.assertEqual(h.close(), 1)


def listening_addresses(port):
    """The local addresses of the TCP sockets listening on port (from /proc)."""
    found = []
    for path, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            with open(path) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, _, p = fields[1].partition(":")
            if fields[3] != "0A" or int(p, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(addr)
            # /proc prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.append(socket.inet_ntop(family, raw))
    return found


def is_loopback(addr):
    return addr.startswith("127.") or addr == "::1" or addr.startswith("::ffff:127.")


class WhoMayCall(unittest.TestCase):
    """A web page must not drive or read the VM (Origin, Host, Content-Type)."""

    @classmethod
    def setUpClass(cls):
        cls.h = Harness("tcp", "localhost", "0")
        assert cls.h.port, cls.h.ready
        cls.base = "http://127.0.0.1:%d" % cls.h.port

    @classmethod
    def tearDownClass(cls):
        cls.h.close()

    def setUp(self):
        self.assertEqual(self.h.cmd("state Running"), "OK")
        self.before = self.requests()  # the fake keeps every request since it started

    def requests(self):
        return self.h.cmd("requests").split(" ", 1)[1:] or [""]

    def new_requests(self):
        before, now = self.before[0], self.requests()[0]
        self.assertTrue(now.startswith(before))
        return now[len(before):].strip(",")

    def assert_untouched(self):
        self.assertEqual(self.h.cmd("get"), "OK Running")
        self.assertEqual(self.new_requests(), "")

    def exchange(self, data):
        r = Raw(self.h.port)
        r.send(data)
        answer = r.response()
        r.close()
        return answer

    def test_browser_post_is_403_and_changes_nothing(self):
        # What fetch(..., {method: "POST", mode: "no-cors", body}) sends: no preflight.
        body = b'{"state":"HardStop"}'
        status, _, answer = self.exchange(
            b"POST /vm/state HTTP/1.1\r\nHost: localhost:%d\r\n"
            b"Origin: https://evil.example\r\nContent-Type: text/plain;charset=UTF-8\r\n"
            b"Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\n"
            b"Content-Length: %d\r\n\r\n" % (self.h.port, len(body)) + body)
        self.assertEqual(status, 403)
        self.assertIn("error", json.loads(answer))
        self.assert_untouched()
        # curl with an Origin of any value, even this service's own, is refused too.
        for origin in ("http://localhost:%d" % self.h.port, "null"):
            status, _, _ = curl("-H", "Origin: " + origin, "-X", "POST", "-d",
                                '{"state":"HardStop"}', self.base + "/vm/state")
            self.assertEqual(status, 403)
        self.assert_untouched()

    def test_html_form_bodies_are_415_and_change_nothing(self):
        for ctype in ("text/plain", "multipart/form-data; boundary=x"):
            status, _, _ = curl("-H", "Content-Type: " + ctype, "-X", "POST", "-d",
                                '{"state":"HardStop"}', self.base + "/vm/state")
            self.assertEqual(status, 415, ctype)
        self.assert_untouched()

    def test_foreign_host_is_403(self):
        # DNS rebinding: the page's own name, now resolving to 127.0.0.1.
        for host in (b"rebind.evil.example:%d" % self.h.port, b"rebind.evil.example",
                     b"192.0.2.1:%d" % self.h.port, b""):
            status, _, answer = self.exchange(
                b"GET /vm/inspect HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
            self.assertEqual(status, 403, host)
            self.assertNotIn(b"cpus", answer)
        status, _, _ = self.exchange(post('{"state":"Stop"}').replace(
            b"Host: localhost", b"Host: rebind.evil.example"))
        self.assertEqual(status, 403)
        status, _, _ = curl("-H", "Host: rebind.evil.example", self.base + "/vm/inspect")
        self.assertEqual(status, 403)
        self.assert_untouched()

    def test_cross_site_fetch_metadata_is_403(self):
        status, _, _ = self.exchange(b"GET /vm/inspect HTTP/1.1\r\nHost: localhost\r\n"
                                     b"Sec-Fetch-Site: cross-site\r\n\r\n")
        self.assertEqual(status, 403)
        status, _, _ = self.exchange(b"GET /vm/state HTTP/1.1\r\nHost: localhost\r\n"
                                     b"Sec-Fetch-Site: none\r\n\r\n")
        self.assertEqual(status, 200)

    def test_plain_clients_still_work(self):
        # curl as a user types it: Host 127.0.0.1:PORT or localhost:PORT.
        for base in (self.base, "http://localhost:%d" % self.h.port):
            status, _, body = curl(base + "/vm/state")
            self.assertEqual((status, json.loads(body)["state"]), (200, "VirtualMachineStateRunning"))
            status, _, body = curl(base + "/vm/inspect")
            self.assertEqual((status, json.loads(body)), (200, INSPECT))
        # podman's Go client: Host localhost:PORT, no Content-Type, no Origin.
        body = b'{"state":"Stop"}'
        status, _, answer = self.exchange(
            b"POST /vm/state HTTP/1.1\r\nHost: localhost:%d\r\nUser-Agent: Go-http-client/1.1\r\n"
            b"Content-Length: %d\r\nAccept-Encoding: gzip\r\n\r\n" % (self.h.port, len(body)) + body)
        self.assertEqual((status, json.loads(answer)), (200, {"state": "VirtualMachineStateStopping"}))
        self.assertEqual(self.new_requests(), "Stop")
        self.assertEqual(self.h.cmd("state Running"), "OK")
        # curl -d (application/x-www-form-urlencoded) and with -H application/json.
        for extra in ((), ("-H", "Content-Type: application/json")):
            status, _, answer = curl(*extra, "-X", "POST", "-d", '{"state":"Stop"}',
                                     self.base + "/vm/state")
            self.assertEqual((status, json.loads(answer)),
                             (200, {"state": "VirtualMachineStateStopping"}))
            self.assertEqual(self.h.cmd("state Running"), "OK")
        self.assertEqual(self.new_requests(), "Stop,Stop,Stop")

    def test_localhost_listens_on_loopback_only(self):
        addrs = listening_addresses(self.h.port)
        self.assertTrue(addrs)
        self.assertIn("127.0.0.1", addrs)
        for a in addrs:
            self.assertTrue(is_loopback(a), addrs)


def hosts_file_wrapper(hosts_path):
    """argv prefix running a command with hosts_path bind-mounted over
    /etc/hosts in a private mount namespace, or None where that is not allowed."""
    wrap = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', hosts_path]
    try:
        ok = subprocess.run(wrap + ["true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return wrap if ok else None


class Binding(unittest.TestCase):
    """Which addresses a tcp:// URI listens on."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        hosts = os.path.join(self.dir.name, "hosts")
        with open(hosts, "w") as f:
            # A resolver that lies: localhost and a name on a foreign address.
            f.write("192.0.2.1 localhost\n192.0.2.1 krunkit-test-foreign\n"
                    "127.0.0.1 krunkit-test-loop\n")
        self.wrap = hosts_file_wrapper(hosts)

    def tearDown(self):
        self.dir.cleanup()

    def test_localhost_is_loopback_whatever_etc_hosts_says(self):
        if not self.wrap:
            self.skipTest("cannot bind-mount /etc/hosts in a mount namespace here")
        h = Harness("tcp", "localhost", "0", wrap=self.wrap)
        self.assertTrue(h.port, h.ready)
        addrs = listening_addresses(h.port)
        self.assertIn("127.0.0.1", addrs)
        self.assertTrue(all(is_loopback(a) for a in addrs), addrs)
        self.assertEqual(curl("http://127.0.0.1:%d/vm/state" % h.port)[0], 200)
        self.assertEqual(h.close(), 0)

    def test_name_resolving_to_a_foreign_address_is_refused(self):
        if not self.wrap:
            self.skipTest("cannot bind-mount /etc/hosts in a mount namespace here")
        h = Harness("tcp", "krunkit-test-foreign", "0", wrap=self.wrap)
        self.assertEqual(h.ready, "FAIL 99")  # EADDRNOTAVAIL
        self.assertEqual(h.close(), 1)
        self.assertIn("--restful-uri", h.log_text)
        self.assertIn("krunkit-test-foreign resolves to 192.0.2.1", h.log_text)
        self.assertIn("tcp://192.0.2.1:0", h.log_text)

    def test_name_resolving_to_loopback_is_served_under_that_name(self):
        if not self.wrap:
            self.skipTest("cannot bind-mount /etc/hosts in a mount namespace here")
        h = Harness("tcp", "krunkit-test-loop", "0", wrap=self.wrap)
        self.assertTrue(h.port, h.ready)
        self.assertEqual(listening_addresses(h.port), ["127.0.0.1"])
        r = Raw(h.port)
        r.send(b"GET /vm/state HTTP/1.1\r\nHost: KRUNKIT-test-loop:%d\r\n\r\n" % h.port)
        self.assertEqual(r.response()[0], 200)
        r.close()
        self.assertEqual(h.close(), 0)

    def test_explicit_wildcard_literal_is_honoured(self):
        h = Harness("tcp", "0.0.0.0", "0")
        self.assertTrue(h.port, h.ready)
        self.assertEqual(listening_addresses(h.port), ["0.0.0.0"])
        # Clients name whichever address reaches it: IP literals are fine, names are not.
        for host, want in ((b"192.0.2.7:%d" % h.port, 200), (b"127.0.0.1", 200),
                           (b"rebind.evil.example", 403)):
            r = Raw(h.port)
            r.send(b"GET /vm/state HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
            self.assertEqual(r.response()[0], want, host)
            r.close()
        self.assertEqual(h.close(), 0)


class UnixService(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "rest.sock")

    def tearDown(self):
        self.dir.cleanup()

    def test_curl_over_unix_socket_and_removal_at_stop(self):
        h = Harness("unix", self.path)
        self.assertEqual(h.ready, "READY 0")
        status, _, body = curl("http://d/vm/state", unix=self.path)
        self.assertEqual((status, json.loads(body)["state"]), (200, "VirtualMachineStateRunning"))
        status, _, body = curl("http://d/vm/inspect", unix=self.path)
        self.assertEqual((status, json.loads(body)), (200, INSPECT))
        status, _, body = curl("-X", "POST", "-d", '{"state":"Stop"}', "http://d/vm/state",
                               unix=self.path)
        self.assertEqual((status, json.loads(body)), (200, {"state": "VirtualMachineStateStopping"}))
        self.assertEqual(h.cmd("requests"), "REQUESTS Stop")
        self.assertEqual(h.cmd("stop"), "STOPPED")
        self.assertFalse(os.path.exists(self.path))
        s = socket.socket(socket.AF_UNIX)
        with self.assertRaises(FileNotFoundError):
            s.connect(self.path)
        s.close()
        self.assertEqual(h.close(), 0)

    def test_raw_pipelined_and_malformed_over_unix_socket(self):
        h = Harness("unix", self.path)
        r = Raw(unix=self.path)
        r.send(GET_STATE + post('{"state":"HardStop"}') + GET_STATE)
        answers = [r.response() for _ in range(3)]
        self.assertEqual([a[0] for a in answers], [200, 200, 200])
        self.assertEqual(json.loads(answers[2][2])["state"], "VirtualMachineStateStopped")
        r.send(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 200 + b"\r\n\r\n")
        self.assertEqual(r.response()[0], 400)
        self.assertTrue(r.closed_by_peer())
        r.close()
        self.assertEqual(curl("http://d/vm/state", unix=self.path)[0], 200)
        h.close()
        self.assertFalse(os.path.exists(self.path))

    def test_socket_is_0600_even_under_umask_000(self):
        h = Harness("unix", self.path, umask=0)
        self.assertEqual(h.ready, "READY 0")
        self.assertEqual(os.lstat(self.path).st_mode & 0o777, 0o600)
        h.close()

    def test_any_host_but_no_origin_over_unix_socket(self):
        h = Harness("unix", self.path)
        # Real clients' made-up names: vfkit's tests "vfkit", curl users "d", "localhost".
        for host in ("vfkit", "d", "localhost"):
            status, _, _ = curl("http://%s/vm/state" % host, unix=self.path)
            self.assertEqual(status, 200, host)
        status, _, _ = curl("-H", "Origin: https://evil.example", "-X", "POST", "-d",
                            '{"state":"HardStop"}', "http://d/vm/state", unix=self.path)
        self.assertEqual(status, 403)
        self.assertEqual(h.cmd("requests"), "REQUESTS")
        h.close()

    def test_stale_symlink_is_not_removed(self):
        s = socket.socket(socket.AF_UNIX)
        real = os.path.join(self.dir.name, "real.sock")
        s.bind(real)
        s.close()  # a stale socket, but reached through a link
        os.symlink(real, self.path)
        h = Harness("unix", self.path)
        self.assertEqual(h.ready, "FAIL 17")  # EEXIST
        self.assertEqual(h.close(), 1)
        self.assertTrue(os.path.islink(self.path))
        self.assertTrue(os.path.exists(real))

    def test_stale_socket_is_replaced(self):
        s = socket.socket(socket.AF_UNIX)
        s.bind(self.path)
        s.close()  # leaves the file, nobody listening
        h = Harness("unix", self.path)
        self.assertEqual(h.ready, "READY 0")
        self.assertEqual(curl("http://d/vm/state", unix=self.path)[0], 200)
        h.close()
        self.assertFalse(os.path.exists(self.path))

    def test_live_socket_is_not_taken_over(self):
        s = socket.socket(socket.AF_UNIX)
        s.bind(self.path)
        s.listen()
        h = Harness("unix", self.path)
        self.assertEqual(h.ready, "FAIL 98")  # EADDRINUSE
        self.assertEqual(h.close(), 1)
        self.assertTrue(os.path.exists(self.path))
        s.close()

    def test_regular_file_is_not_removed(self):
        with open(self.path, "w") as f:
            f.write("precious")
        h = Harness("unix", self.path)
        self.assertEqual(h.ready, "FAIL 17")  # EEXIST
        self.assertEqual(h.close(), 1)
        with open(self.path) as f:
            self.assertEqual(f.read(), "precious")

    def test_too_long_path_fails(self):
        h = Harness("unix", "/tmp/" + "x" * 120)
        self.assertEqual(h.ready, "FAIL 36")  # ENAMETOOLONG
        self.assertEqual(h.close(), 1)

    def test_missing_directory_fails_and_leaves_nothing(self):
        path = os.path.join(self.dir.name, "no", "rest.sock")
        h = Harness("unix", path)
        self.assertEqual(h.ready, "FAIL 2")  # ENOENT
        self.assertEqual(h.close(), 1)
        self.assertEqual(os.listdir(self.dir.name), [])

    def test_socket_replaced_by_another_is_left_alone(self):
        h = Harness("unix", self.path)
        os.unlink(self.path)
        s = socket.socket(socket.AF_UNIX)
        s.bind(self.path)  # another process's socket now
        h.close()
        self.assertTrue(os.path.exists(self.path))
        s.close()


if __name__ == "__main__":
    HARNESS = os.path.abspath(sys.argv.pop(1))
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        os.environ.pop(var, None)
    unittest.main(verbosity=2)
