"""OpenAI-compatible endpoints: retries, timeouts, errors, secrets, concurrency, teacher traces.

These use small local HTTP servers (on 127.0.0.1, real sockets) that misbehave on purpose or play a
solver; tests/test_endpoint_server.py runs the same code against a real `mlx_lm.server`.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from wordle_mlx.play import endpoint, evaluate
from wordle_mlx.train import teacher
from wordle_mlx.wordle import solvers
from wordle_mlx.wordle.game import GameState, Turn, is_consistent

ROOT = Path(__file__).resolve().parents[1]


class FakeServer:
    """A chat-completions server whose answers come from `respond(body, n) -> (status, payload, headers, delay)`."""

    def __init__(self, respond):
        state = self
        self.respond, self.requests, self.headers, self.in_flight, self.max_in_flight = respond, 0, [], 0, 0
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                done = False
                with state.lock:
                    state.requests += 1
                    n = state.requests
                    state.headers.append(dict(self.headers))
                    state.in_flight += 1
                    state.max_in_flight = max(state.max_in_flight, state.in_flight)
                try:
                    status, payload, headers, delay = state.respond(body, n)
                    time.sleep(delay)
                    data = json.dumps(payload).encode()
                    with state.lock:  # done before the client can read it and send its next request
                        state.in_flight -= 1
                    done = True
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    if not done:
                        with state.lock:
                            state.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def answer(text: str) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


def ok(text: str, delay: float = 0.0):
    return 200, answer(text), {}, delay


MESSAGES = [{"role": "user", "content": "hi"}]


class TestChatClient(unittest.TestCase):
    def serve(self, respond) -> FakeServer:
        server = FakeServer(respond)
        self.addCleanup(server.close)
        return server

    def test_retries_5xx_then_succeeds(self):
        server = self.serve(lambda body, n: (503, {"error": {"message": "busy"}}, {}, 0) if n <= 2 else ok("fine"))
        client = endpoint.ChatClient(server.url, "m", retries=3, backoff=0.01)
        self.assertEqual(client.complete(MESSAGES), "fine")
        self.assertEqual((server.requests, client.retried), (3, 2))

    def test_429_waits_for_retry_after(self):
        server = self.serve(lambda body, n: (429, {"error": "slow down"}, {"Retry-After": "0.2"}, 0) if n == 1 else ok("x"))
        client = endpoint.ChatClient(server.url, "m", retries=2, backoff=0.01)
        start = time.perf_counter()
        self.assertEqual(client.complete(MESSAGES), "x")
        self.assertGreaterEqual(time.perf_counter() - start, 0.2)

    def test_timeout_is_retried_then_one_clear_error(self):
        server = self.serve(lambda body, n: ok("late", delay=1.0))
        client = endpoint.ChatClient(server.url, "m", timeout=0.2, retries=1, backoff=0.01)
        with self.assertRaisesRegex(endpoint.EndpointError, r"timed out after 0.2 s \(after 2 attempts\)"):
            client.complete(MESSAGES)
        self.assertEqual(server.requests, 2)

    def test_client_errors_are_not_retried(self):
        server = self.serve(lambda body, n: (404, {"error": {"message": "model 'nope' not found"}}, {}, 0))
        client = endpoint.ChatClient(server.url, "nope", retries=3, backoff=0.01)
        with self.assertRaisesRegex(endpoint.EndpointError, r"HTTP 404: model 'nope' not found"):
            client.complete(MESSAGES)
        self.assertEqual(server.requests, 1)

    def test_concurrency_is_bounded(self):
        server = self.serve(lambda body, n: ok("x", delay=0.15))
        client = endpoint.ChatClient(server.url, "m", concurrency=2)
        self.assertEqual(client.complete_many([MESSAGES] * 6), ["x"] * 6)
        self.assertEqual(server.max_in_flight, 2)

    def test_api_key_only_in_the_header(self):
        server = self.serve(lambda body, n: ok("<guess>zzzzz</guess>"))
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "r.json"
            env = dict(os.environ, WORDLE_TEST_KEY="sk-secret-123")
            proc = subprocess.run([sys.executable, "-m", "scripts.evaluate", "--endpoint", server.url, "--endpoint-model",
                                   "m", "--api-key-env", "WORDLE_TEST_KEY", "--n", "1", "--json", str(out)],
                                  cwd=ROOT, capture_output=True, text=True, env=env)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(server.headers[0]["Authorization"], "Bearer sk-secret-123")
            self.assertNotIn("sk-secret-123", out.read_text() + proc.stdout + proc.stderr)

    def test_missing_key_variable_is_one_line(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.evaluate", "--endpoint", "http://127.0.0.1:9", "--endpoint-model",
                               "m", "--api-key-env", "WORDLE_NO_SUCH_VAR", "--n", "1"], cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.strip(), "error: --api-key-env WORDLE_NO_SUCH_VAR: the environment variable is not set")

    def test_dead_endpoint_is_one_line(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.evaluate", "--endpoint", "http://127.0.0.1:9", "--endpoint-model",
                               "m", "--n", "1", "--retries", "1", "--timeout", "2"], cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 1)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertRegex(lines[0], r"^error: endpoint http://127.0.0.1:9/v1/chat/completions \(model 'm'\): cannot connect")

    def test_broken_format_is_an_invalid_guess_not_an_error(self):
        server = self.serve(lambda body, n: ok("I think the word is CRANE"))
        policy = endpoint.EndpointPolicy(endpoint.ChatClient(server.url, "m"))
        report = evaluate.evaluate(policy, ["hello"], progress=False)
        self.assertEqual(report["invalid_reasons"], {"no_guess_tag": 6})

    def test_requests_carry_the_trainers_messages(self):
        from wordle_mlx.play.prompts import build_messages

        seen = []
        server = self.serve(lambda body, n: (seen.append(body), ok("<think>x</think>\n<guess>CRANE</guess>"))[1])
        policy = endpoint.EndpointPolicy(endpoint.ChatClient(server.url, "m"), fmt="compact")
        evaluate.play_games(policy, ["crane"])
        self.assertEqual(seen[0]["messages"], build_messages([], "compact"))
        self.assertEqual(seen[0]["model"], "m")

    def test_url_forms(self):
        for base in ("http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/chat/completions"):
            self.assertEqual(endpoint.chat_url(base), "http://h:1/v1/chat/completions")
        with self.assertRaisesRegex(endpoint.EndpointError, "expected an http"):
            endpoint.chat_url("localhost:8080")


def solver_server(inconsistent_secret_turn: int | None = 2, long_think: bool = True) -> FakeServer:
    """Plays the `frequent` solver from the rendered prompt's history; on turn `inconsistent_secret_turn`
    of every game it plays a valid word that does not fit (to be dropped), once per game."""
    policy = solvers.make_policy("frequent")

    def respond(body, n):
        content = body["messages"][1]["content"]
        turns = []
        for line in content.splitlines():
            parts = line.split()
            if len(parts) == 2 and len(parts[0]) == 5 and set(parts[1]) <= set("GYX"):
                turns.append(Turn(parts[0].lower(), parts[1]))
        guess = policy.guess(turns)
        if inconsistent_secret_turn is not None and len(turns) == inconsistent_secret_turn - 1 and turns:
            for word in ("vivid", "fuzzy", "jazzy", "mummy"):
                if not is_consistent(word, turns) and word not in {t.guess for t in turns}:
                    guess = word
                    break
        think = ("I compare every letter of every earlier guess with its feedback, carefully, " * 5) if long_think else "ok"
        return ok(f"<think>{think}</think>\n<guess>{guess.upper()}</guess>")

    return FakeServer(respond)


class TestTeacherTraces(unittest.TestCase):
    def test_only_valid_consistent_turns_are_kept_and_think_is_trimmed(self):
        server = solver_server()
        self.addCleanup(server.close)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "t.jsonl"
            totals = teacher.run_teacher(endpoint.ChatClient(server.url, "solver", concurrency=3), ["store", "hello", "vivid"],
                                         out, fmt="rows", think_max_chars=60)
            records = [json.loads(l) for l in out.read_text().splitlines()]
        self.assertEqual(totals["games"], 3)
        self.assertGreater(totals["inconsistent"], 0)
        self.assertEqual(totals["kept"], len(records))
        for r in records:
            state = GameState(r["secret"])
            for guess, fb in r["turns"]:
                state = state.play(guess)
                self.assertEqual(state.turns[-1].feedback, fb)
            self.assertTrue(not state.turns or is_consistent(r["target"], state.turns), r)
            think = r["completion"].split("<think>")[1].split("</think>")[0]
            self.assertLessEqual(len(think), 60)
            self.assertTrue(think.endswith("..."))
            self.assertEqual(r["policy"], "teacher:solver")

    def test_interrupted_run_keeps_finished_games_and_continues(self):
        healthy = solver_server(inconsistent_secret_turn=None, long_think=False)
        self.addCleanup(healthy.close)

        def dying(body, n):  # answers 5 requests, then the server is down for good
            return healthy.respond(body, n) if n <= 5 else (503, {"error": "down"}, {}, 0)

        flaky = FakeServer(dying)
        self.addCleanup(flaky.close)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "t.jsonl"
            base = [sys.executable, "-m", "scripts.data_synth", "--mode", "sft", "--n", "4", "--out", str(out),
                    "--teacher-model", "solver", "--concurrency", "1", "--retries", "1", "--format", "rows"]
            first = subprocess.run(base + ["--teacher-endpoint", flaky.url], cwd=ROOT, capture_output=True, text=True)
            self.assertEqual(first.returncode, 1, first.stdout + first.stderr)
            self.assertIn("rerun the same command to continue", first.stderr)
            done_first = teacher.done_games(out)
            self.assertGreaterEqual(len(done_first), 1)
            self.assertLess(len(done_first), 4)
            second = subprocess.run(base + ["--teacher-endpoint", healthy.url], cwd=ROOT, capture_output=True, text=True)
            self.assertEqual(second.returncode, 0, second.stderr)
            self.assertIn(f"({len(done_first)} from an earlier run)", second.stdout)
            games = [json.loads(l) for l in Path(str(out) + ".games.jsonl").read_text().splitlines()]
            self.assertEqual(sorted(g["game"] for g in games), [0, 1, 2, 3])  # each game once
            records = [json.loads(l) for l in out.read_text().splitlines()]
            self.assertEqual(len(records), sum(g["kept"] for g in games))


if __name__ == "__main__":
    unittest.main()
