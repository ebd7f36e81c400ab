"""What every run leaves in its directory: metrics.jsonl, summary.json, and W&B; and what it prints on the way."""
import json
import os
from pathlib import Path
from typing import Any, Optional

from dni_repro.runs.progress import Progress
from dni_repro.runs.wandb_sink import WandbSink

METRICS_NAME = "metrics.jsonl"
SUMMARY_NAME = "summary.json"


def _write_json_atomically(path: Path, payload: dict) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


class RunRecord:
    """Append-only metric log plus a final summary; mirrors both to W&B and the progress output if enabled."""

    def __init__(self, run_dir: Path, wandb_sink: Optional[WandbSink], resume_step: Optional[int] = None,
                 progress: Optional[Progress] = None):
        self.run_dir = Path(run_dir)
        self.wandb = wandb_sink
        self.progress = progress
        self.metrics_path = self.run_dir / METRICS_NAME
        self.best: dict[str, float] = {}
        self.last: dict[str, float] = {}
        if resume_step is None:
            self.metrics_path.write_text("")
        else:
            self._rewind_to(resume_step)

    def _rewind_to(self, step: int) -> None:
        """Drop lines the killed run logged after its checkpoint; they will be logged again."""
        kept = []
        if self.metrics_path.exists():
            for line in self.metrics_path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a line torn by the kill: only the tail can be
                    break
                if entry["step"] <= step:
                    kept.append(line)
                    self._remember(entry)
        self.metrics_path.write_text("".join(line + "\n" for line in kept))

    def _remember(self, entry: dict) -> None:
        for key, value in entry.items():
            if key in ("step", "samples"):
                continue
            self.last[key] = value
            if key.endswith("error") and (key not in self.best or value < self.best[key]):
                self.best[key] = value

    def log(self, step: int, metrics: dict[str, float]) -> None:
        entry = {"step": step, **metrics}
        with open(self.metrics_path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")
        self._remember(entry)
        if self.wandb is not None:
            self.wandb.log(step, metrics)
        if self.progress is not None:
            self.progress.update(step, metrics)

    def finish(self, status: str, summary: dict[str, Any]) -> dict:
        payload = {
            "status": status,
            **summary,
            "final": dict(self.last),
            "best": dict(self.best),
        }
        if self.progress is not None:
            self.progress.close()
        _write_json_atomically(self.run_dir / SUMMARY_NAME, payload)
        if self.wandb is not None:
            flat = {f"final/{k}": v for k, v in self.last.items()}
            flat.update({f"best/{k}": v for k, v in self.best.items()})
            flat.update(status=status, steps=summary.get("steps"), samples_per_s=summary.get("samples_per_s"))
            self.wandb.finish(flat, exit_code=0 if status == "completed" else 1)
        return payload

