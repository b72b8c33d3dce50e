"""JSON-lines logging for `hearthnet run` (stderr and a rotating file)."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from pathlib import Path

from hearthnet import clock

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": clock.iso(record.created), "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        out.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(level: str = "info", log_dir: Path | None = None, *, stream=None) -> logging.Logger:
    """Idempotent: replaces the handlers of the `hearthnet` logger."""
    logger = logging.getLogger("hearthnet")
    logger.setLevel(level.upper())
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    fmt = JsonFormatter()
    h = logging.StreamHandler(stream or sys.stderr)
    h.setFormatter(fmt)
    logger.addHandler(h)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(log_dir / "node.jsonl", maxBytes=10 * 1024 * 1024, backupCount=5)
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    return logger


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"hearthnet.{name}")


__all__ = ["JsonFormatter", "configure", "get_logger"]
