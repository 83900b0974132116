"""A bounded load test of the demo as a Space serves it: `python app.py` on localhost and concurrent gradio_client users.

    PYTHONPATH=. python bench/load.py                              # 6 users x 2 requests, the Space's queue settings
    PYTHONPATH=. python bench/load.py --users 6 --requests 2 --queue-size 4 --max-request-seconds 120

Each user is a separate gradio_client session that submits its requests one after another (the Talk tab: the
example reference clip, a 10-word sentence, --steps). The server is a subprocess started with the Space variables
given here (OMNITALKER_QUEUE_SIZE, OMNITALKER_MAX_REQUEST_SECONDS; its files go to a temporary GRADIO_TEMP_DIR)
and stopped at the end, so the test stops by itself (--timeout bounds the whole run).

Reports (bench/results/load.json): completed requests, busy answers ("queue full"), other errors with their
message, p50 / p95 seconds from submission to the first output the client receives and to the end, the server's
peak resident memory (its process tree, sampled every SAMPLE_SECONDS), the result files left in the results folder
once the users closed their sessions (waiting up to SESSION_END_WAIT for the server to remove them), and what is
left in the server's temp folder after it stopped (gradio's copies of the examples and uploads, removed by its
hourly cache cleanup).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXT = "Space is quiet, but I can still tell you a story."  # 10 words, ~3 s of speech
RESULTS = ROOT / "bench" / "results" / "load.json"
SAMPLE_SECONDS = 0.2  # memory sampling period
START_TIMEOUT = 300.0  # seconds for the server to load the weights and answer
SESSION_END_WAIT = 30.0  # seconds for the server to remove the results of the sessions the users closed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_server(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the server did not answer at {url} within {timeout:.0f} s")


class MemoryPeak(threading.Thread):
    """Peak resident memory of a process and its children, sampled until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_bytes, self._stop_event = pid, 0, threading.Event()

    def run(self) -> None:
        import psutil

        root = psutil.Process(self.pid)
        while not self._stop_event.wait(SAMPLE_SECONDS):
            try:
                tree = [root, *root.children(recursive=True)]
                self.peak_bytes = max(self.peak_bytes, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                continue

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def one_user(url: str, user: int, requests: int, settings: tuple, example: dict, records: list,
             lock: threading.Lock, download_dir: str) -> None:
    """A browser session: its requests one after another, each timed to its first output and to its end.
    ``settings``: steps and the three guidance sliders as the page sends them."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    from gradio_client.utils import QueueError

    client = Client(url, verbose=False, download_files=download_dir)
    try:
        for index in range(requests):
            record = {"user": user, "request": index}
            start = time.perf_counter()
            try:
                job = client.submit(handle_file(example["video"]), None, None, example["reference_text"], TEXT,
                                    *settings, 1.0, user * requests + index, api_name="/talk")
                while not job.done():
                    if "first_output_s" not in record and job.outputs():
                        record["first_output_s"] = time.perf_counter() - start
                    time.sleep(0.02)
                job.result()
                record["outcome"] = "completed"
            except QueueError as error:
                record.update(outcome="busy", message=str(error))
            except (AppError, Exception) as error:  # noqa: BLE001 - every other answer is reported, not raised
                record.update(outcome="error", message=str(error)[:300])
            record["end_s"] = time.perf_counter() - start
            record.setdefault("first_output_s", record["end_s"])  # a non-streaming answer arrives at the end
            with lock:
                records.append(record)
    finally:
        client.close()


def percentile(values: list[float], share: float) -> float | None:
    return round(float(np.percentile(values, 100 * share)), 2) if values else None


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--requests", type=int, default=2, help="requests per user, one after another")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the app's)")
    parser.add_argument("--queue-size", type=int, default=None, help="OMNITALKER_QUEUE_SIZE (default: the app's)")
    parser.add_argument("--max-request-seconds", default=None, help="OMNITALKER_MAX_REQUEST_SECONDS")
    parser.add_argument("--pipeline", default=None, help="pipeline folder (default: the bundled demo)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="the whole run stops after this many seconds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from omnitalker.flow.guidance import (
        DEFAULT_AUDIO_STRENGTH,
        DEFAULT_TEXT_STRENGTH,
        DEFAULT_VISUAL_STRENGTH,
    )
    from omnitalker.flow.scheduler import DEFAULT_NUM_INFERENCE_STEPS
    from omnitalker.ui.handlers import RESULTS_FOLDER

    steps = DEFAULT_NUM_INFERENCE_STEPS if args.steps is None else args.steps
    example = json.loads((ROOT / "examples" / "examples.json").read_text())["talk_video"][0]
    example = {**example, "video": str(ROOT / "examples" / example["video"])}

    with tempfile.TemporaryDirectory() as temp:
        gradio_dir, downloads = Path(temp) / "gradio", Path(temp) / "downloads"
        gradio_dir.mkdir()
        downloads.mkdir()
        env = {**os.environ, "GRADIO_TEMP_DIR": str(gradio_dir), "GRADIO_ANALYTICS_ENABLED": "False",
               "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        if args.queue_size is not None:
            env["OMNITALKER_QUEUE_SIZE"] = str(args.queue_size)
        if args.max_request_seconds is not None:
            env["OMNITALKER_MAX_REQUEST_SECONDS"] = str(args.max_request_seconds)
        port = free_port()
        command = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
        if args.pipeline:
            command += ["--pipeline", args.pipeline]
        server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, start_new_session=True)
        url = f"http://127.0.0.1:{port}/"
        records: list[dict] = []
        try:
            wait_for_server(url, server, START_TIMEOUT)
            memory = MemoryPeak(server.pid)
            memory.start()
            lock = threading.Lock()
            start = time.perf_counter()
            settings = (steps, DEFAULT_TEXT_STRENGTH, DEFAULT_AUDIO_STRENGTH, DEFAULT_VISUAL_STRENGTH)
            users = [threading.Thread(target=one_user, args=(url, user, args.requests, settings, example, records,
                                                             lock, str(downloads)), daemon=True)
                     for user in range(args.users)]
            for thread in users:
                thread.start()
            for thread in users:
                thread.join(timeout=max(0.0, args.timeout - (time.perf_counter() - start)))
            wall = time.perf_counter() - start
            unfinished = sum(thread.is_alive() for thread in users)
            results = gradio_dir / RESULTS_FOLDER
            settle = time.monotonic() + SESSION_END_WAIT  # the closed sessions' results go in the background
            while results.exists() and files_under(results) and time.monotonic() < settle:
                time.sleep(0.5)
            memory.stop()
            results_left = files_under(results) if results.exists() else []
        finally:
            os.killpg(server.pid, signal.SIGINT)
            try:
                _, stderr = server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                _, stderr = server.communicate()
        temp_left = files_under(gradio_dir)

    completed = [r for r in records if r["outcome"] == "completed"]
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPU cores, {platform.python_version()}",
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "users": args.users, "requests_per_user": args.requests, "steps": steps, "text": TEXT,
        "queue_size": args.queue_size or "app default", "max_request_seconds": args.max_request_seconds or "app default",
        "wall_s": round(wall, 1),
        "requests": len(records), "unfinished_users": unfinished,
        "completed": len(completed),
        "busy": sum(r["outcome"] == "busy" for r in records),
        "errors": [r.get("message") for r in records if r["outcome"] == "error"],
        "first_output_s": {"p50": percentile([r["first_output_s"] for r in completed], 0.5),
                           "p95": percentile([r["first_output_s"] for r in completed], 0.95)},
        "end_s": {"p50": percentile([r["end_s"] for r in completed], 0.5),
                  "p95": percentile([r["end_s"] for r in completed], 0.95),
                  "mean": round(statistics.fmean(r["end_s"] for r in completed), 2) if completed else None},
        "server_peak_rss_gb": round(memory.peak_bytes / 1e9, 2),
        "result_files_left_while_running": results_left,
        "files_left_after_server_stopped": temp_left,
        "server_log_tail": stderr[-2000:] if unfinished or len(completed) < len(records) else "",
        "records": records,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key in ("requests", "completed", "busy", "errors", "first_output_s", "end_s", "server_peak_rss_gb", "wall_s"):
        print(f"{key:24s} {result[key]}")
    print(f"{'result files (running)':24s} {len(results_left)}; after stop: {len(temp_left)}")
    return result


if __name__ == "__main__":
    main()
