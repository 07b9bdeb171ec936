"""The fast runtime's process: OpenVINO GenAI's ContinuousBatchingPipeline driven step by step.

It runs as a separate process (started with `python -m`, so it never re-runs the app's main script) because `step()` holds Python's GIL for a whole forward: in the app's process every
page, websocket and training thread would wait for each decode step. Here the app keeps its GIL and the runtime
keeps its own threads. This module imports neither torch nor labs (the child starts fast and small).

Messages from the app:  ("add", rid, ids, settings) · ("cancel", rid) · ("quit",)
Messages to the app:    ("ready", info) · ("step", [(rid, new_ids, finish), ...]) · ("failed", rid, reason)
                        · ("fatal", reason): the pipeline cannot go on; the app falls back to torch.
finish: None while running, else "stop" (end of sequence), "length" (its max_new_tokens) or "cancelled".
"""
from __future__ import annotations

import json
import os
import sys
import time
from multiprocessing.connection import Client

import numpy as np


def generation_config(genai, s: dict):
    """One request's sampling settings as OpenVINO GenAI's GenerationConfig (per request, with its own seed)."""
    c = genai.GenerationConfig()
    c.max_new_tokens = int(s["max_new_tokens"])
    c.ignore_eos = bool(s["ignore_eos"])
    c.stop_token_ids = set(s["stop_ids"])
    c.repetition_penalty = float(s["repetition_penalty"])
    if s["temperature"] == 0:
        c.do_sample = False  # greedy
    else:
        c.do_sample = True
        c.temperature = float(s["temperature"])
        c.top_p = float(s["top_p"])
        if s["top_k"]:
            c.top_k = int(s["top_k"])
        c.rng_seed = int(s["seed"]) if s["seed"] is not None else int(time.time_ns() % 2**31)
    return c


def main(conn, folder: str, properties: dict, max_streams: int) -> None:
    """Serve requests from `conn` until ("quit",) or the app goes away."""
    try:
        import openvino as ov  # optional dependency: without OpenVINO the torch engine serves
        import openvino_genai as genai  # optional dependency: without OpenVINO GenAI the torch engine serves

        scheduler = genai.SchedulerConfig()
        scheduler.cache_size = 2  # GB of KV blocks: about 45k float32 tokens of SmolLM2 (30 layers, 3 KV heads)
        scheduler.max_num_seqs = max_streams
        scheduler.max_num_batched_tokens = 2048  # prompt tokens prefilled in one step (split-fuse beyond)
        pipe = genai.ContinuousBatchingPipeline(folder, scheduler, "CPU", properties)
    except Exception as exc:  # noqa: BLE001 - reported to the app, which keeps torch serving
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", {"folder": folder, "properties": properties}))
    finishes = {genai.GenerationFinishReason.STOP: "stop", genai.GenerationFinishReason.LENGTH: "length"}
    handles = {}
    while True:
        try:
            wait = None if not handles else 0  # idle: block until the app sends something
            while conn.poll(wait):
                wait = 0
                msg = conn.recv()
                if msg[0] == "quit":
                    return
                if msg[0] == "cancel":
                    handle = handles.pop(msg[1], None)
                    if handle is not None:
                        handle.cancel()
                    continue
                _, rid, ids, settings = msg
                try:
                    tensor = ov.Tensor(np.asarray([ids], dtype=np.int64))
                    handles[rid] = pipe.add_request(rid, tensor, generation_config(genai, settings))
                except Exception as exc:  # noqa: BLE001 - this request only
                    conn.send(("failed", rid, f"{type(exc).__name__}: {exc}"))
            if not handles:
                continue
            pipe.step()
            events = []
            for rid, handle in list(handles.items()):
                new, finish = [], None
                if handle.can_read():
                    out = next(iter(handle.read().values()), None)  # one sequence per request
                    if out is not None:
                        new = list(out.generated_ids)
                        finish = finishes.get(out.finish_reason)
                status = handle.get_status()
                if finish is None and status != genai.GenerationStatus.RUNNING:
                    finish = "cancelled" if status in (genai.GenerationStatus.CANCEL, genai.GenerationStatus.STOP) \
                        else "error: the runtime ignored this request (prompt too long for its cache?)"
                if finish is not None:
                    del handles[rid]
                if new or finish:
                    events.append((rid, new, finish))
            if events:
                conn.send(("step", events))
        except (EOFError, BrokenPipeError, ConnectionResetError):
            return  # the app is gone
        except Exception as exc:  # noqa: BLE001 - a failed step ends every stream in it, and this runtime
            try:
                conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
            finally:
                return


if __name__ == "__main__":
    # python -m labs.serving.runtimes.worker SOCKET FOLDER PROPERTIES_JSON MAX_STREAMS, started by labs.serving.runtimes.engine;
    # the key that authenticates the app's socket comes in LLMLAB_RUNTIME_KEY.
    if len(sys.argv) != 5 or "LLMLAB_RUNTIME_KEY" not in os.environ:
        sys.exit("labs.serving.runtimes.worker runs as the app's child process (labs.serving.runtimes.engine).")
    address, folder, props, streams = sys.argv[1:]
    main(Client(address, family="AF_UNIX", authkey=bytes.fromhex(os.environ.pop("LLMLAB_RUNTIME_KEY"))),
         folder, json.loads(props), int(streams))
