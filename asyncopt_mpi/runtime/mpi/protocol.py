"""Wire encoding of jobs and results as fixed-size float64 headers plus typed payloads (no pickling).

A job is a JOB header, then one POINT message per point version the worker does not hold
yet (the point itself, or the chain of deltas that rebuilds it from an older version the
worker holds: the header names that base), then an INDICES message when the job names samples. A job that carries one point of
at most PACK_FLOATS floats and no indices sends it in the JOB message itself, after the
header: one message instead of two is what most jobs of small problems need. A result is one RESULT message:
header followed by the payload in the same float64 buffer, so the server receives it with
one re-armed receive into a preallocated buffer. Integers up to 2^53 are exact in float64.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ...methods.base import Job, JobKind

HEADER = 24  # float64 slots in every header
PACK_FLOATS = 1 << 16  # points up to this size travel inside the job message
CONTROL_BYTES = 1 << 16  # room for a worker's error report


class Tag(IntEnum):
    JOB = 1  # server -> worker: job header
    POINT = 2  # server -> worker: a point version (dim float64)
    INDICES = 3  # server -> worker: sample indices (int64)
    STOP = 4  # server -> worker: stop header
    CANCEL = 7  # server -> worker: abandon every job with an id up to the one given
    RESULT = 5  # worker -> server: header + payload, or a goodbye
    CONTROL = 6  # worker -> server: a notice (see Notice), utf-8


class Notice:
    """First byte of a CONTROL message: what the worker reports; the rest is text."""

    ERROR = b"E"  # the worker failed; the text says why
    SIGNAL = b"S"  # the worker received a stop signal; the text names it


class Msg(IntEnum):
    RESULT = 1
    BYE = 2
    CANCELLED = 3  # the job was abandoned on a CANCEL; no payload


# Job header slots.
(J_ID, J_KIND, J_VERSION, J_VERSION2, J_BATCH, J_DURATION, J_FINISH, J_FAIL, J_COPIES, J_COMPRESSOR,
 J_COMPRESS_PARAM, J_EXTRA_GRADS, J_PACKED, J_N_INDICES, J_N_ATTACHED, J_ATTACHED) = range(16)
MAX_ATTACHED = (HEADER - J_ATTACHED) // 2  # (version, base) pairs; base -1: the point itself
# Stop header slots.
S_FAILED, S_JOBS_SENT, S_CANCELS_SENT = 0, 1, 2
# Cancel header slot.
C_THROUGH = 0
# Result header slots.
(R_MSG, R_ID, R_KIND, R_VERSION, R_N_GRADS, R_N_VALUES, R_DURATION, R_SLEEP, R_OVERRUN,
 R_FINGERPRINT) = range(10)
# Goodbye header slot (after R_MSG): the CONTROL notices the worker sent, so the server takes
# every one before it ends (a notice and the goodbye travel under different tags, in no set order).
B_NOTICES = 1


def encode_job(
    job: Job, attached: list[tuple[int, int]], finish: float = -1.0, point: np.ndarray | None = None
) -> np.ndarray:
    """The JOB message for `job`; `attached` are the (version, base) whose POINT messages follow, in order.

    `finish` is when the job ends on the server's monotonic clock, for a worker on its host
    (-1: the worker times the job from its arrival). With `point` (the one attached version)
    the point is packed after the header and no POINT message follows.
    """
    header = np.zeros(HEADER if point is None else HEADER + point.size)
    if point is not None:
        header[HEADER:] = point
    # One slice assignment (the field order of the J_ constants) is cheaper than one per field.
    header[: J_ATTACHED + 2 * len(attached)] = [
        job.job_id, job.kind, job.version, job.version2, job.batch, job.duration, finish, job.fail, job.copies,
        job.compressor, job.compress_param, job.extra_grads, point is not None, 0 if job.indices is None else len(job.indices),
        len(attached), *(value for pair in attached for value in pair),
    ]
    return header


def encode_job_into(
    buffer: np.ndarray, job: Job, attached: list[tuple[int, int]], finish: float = -1.0, point: np.ndarray | None = None
) -> np.ndarray:
    """encode_job into a reused buffer of at least HEADER (+ point size) floats; returns the message view."""
    message = buffer[: HEADER if point is None else HEADER + point.size]
    if point is not None:
        message[HEADER:] = point
    fields = [
        job.job_id, job.kind, job.version, job.version2, job.batch, job.duration, finish, job.fail, job.copies,
        job.compressor, job.compress_param, job.extra_grads, point is not None, 0 if job.indices is None else len(job.indices),
        len(attached), *(value for pair in attached for value in pair),
    ]
    message[: len(fields)] = fields
    message[len(fields) : HEADER] = 0.0
    return message


_KINDS = {int(kind): kind for kind in JobKind}


def decode_job(header: np.ndarray) -> tuple[Job, list[tuple[int, int]], int, float, bool]:
    """Job (indices still to receive), attached (version, base), number of indices that follow, finish, packed."""
    fields = header[:HEADER].tolist()
    n_attached = int(fields[J_N_ATTACHED])
    job = Job(
        kind=_KINDS[int(fields[J_KIND])],
        version=int(fields[J_VERSION]),
        version2=int(fields[J_VERSION2]),
        batch=int(fields[J_BATCH]),
        job_id=int(fields[J_ID]),
        duration=fields[J_DURATION],
        fail=bool(fields[J_FAIL]),
        copies=int(fields[J_COPIES]),
        compressor=int(fields[J_COMPRESSOR]),
        compress_param=int(fields[J_COMPRESS_PARAM]),
        extra_grads=int(fields[J_EXTRA_GRADS]),
    )
    pairs = fields[J_ATTACHED : J_ATTACHED + 2 * n_attached]
    attached = [(int(pairs[2 * k]), int(pairs[2 * k + 1])) for k in range(n_attached)]
    return job, attached, int(fields[J_N_INDICES]), fields[J_FINISH], bool(fields[J_PACKED])


def encode_stop(failed: bool, jobs_sent: int, cancels_sent: int) -> np.ndarray:
    header = np.zeros(HEADER)
    header[S_FAILED] = failed
    header[S_JOBS_SENT] = jobs_sent
    header[S_CANCELS_SENT] = cancels_sent
    return header


def encode_cancel(through_job_id: int) -> np.ndarray:
    header = np.zeros(HEADER)
    header[C_THROUGH] = through_job_id
    return header


def encode_cancelled(job_id: int) -> np.ndarray:
    header = np.zeros(HEADER)
    header[R_MSG] = Msg.CANCELLED
    header[R_ID] = job_id
    return header


def fill_result(
    buffer: np.ndarray, job: Job, n_grads: int, n_values: int, duration: float, sleep: float, overrun: float,
    fingerprint: float = -1.0,
) -> None:
    """Write a result header into buffer[:HEADER]; the payload is already in buffer[HEADER:].

    `fingerprint` is the squared norm of a point the worker rebuilt from deltas (-1: none).
    """
    buffer[R_MSG] = Msg.RESULT
    buffer[R_ID] = job.job_id
    buffer[R_KIND] = job.kind
    buffer[R_VERSION] = job.version
    buffer[R_N_GRADS] = n_grads
    buffer[R_N_VALUES] = n_values
    buffer[R_DURATION] = duration
    buffer[R_SLEEP] = sleep
    buffer[R_OVERRUN] = overrun
    buffer[R_FINGERPRINT] = fingerprint


def encode_bye(notices_sent: int) -> np.ndarray:
    header = np.zeros(HEADER)
    header[R_MSG] = Msg.BYE
    header[B_NOTICES] = notices_sent
    return header
