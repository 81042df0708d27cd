"""``http_find_slot_load.py --split``: put on a server's PYTHONPATH (never the bench's own), this counts
the thread CPU spent inside ``FindSlotService.answer`` and the answers it gave, so the bench can split
the server's CPU per answer into the service's and the HTTP layer's (uvicorn, middlewares, routing, the
thread-pool hop). On SIGUSR1 each worker process writes its totals to
``$SLOTBROKER_BENCH_SPLIT_DIR/<pid>.json``. Nothing here changes what the server answers."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

OUT = os.environ.get("SLOTBROKER_BENCH_SPLIT_DIR")

if OUT:
    from slotbroker.services.find_slot.service import FindSlotService

    totals = {"service_cpu_s": 0.0, "answers": 0}
    plain = FindSlotService.answer

    def answer(self: FindSlotService, *args: Any, **kwargs: Any) -> Any:
        began = time.thread_time()
        try:
            return plain(self, *args, **kwargs)
        finally:
            totals["service_cpu_s"] += time.thread_time() - began  # one thread's time: no lock needed
            totals["answers"] += 1

    FindSlotService.answer = answer  # type: ignore[method-assign]

    out_dir = Path(OUT)

    def dump(*_: object) -> None:
        (out_dir / f"{os.getpid()}.json").write_text(json.dumps(totals))

    signal.signal(signal.SIGUSR1, dump)
