"""Shared test settings: float64, one BLAS/torch thread (the machine has 2 cores and
pytest-xdist runs two workers), a non-interactive matplotlib backend."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)
