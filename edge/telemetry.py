"""Raspberry Pi / Linux telemetry: temperature, throttling, clock and governor (stdlib only).

Every reader returns None where the machine does not expose the value, so a benchmark can
record what it finds on any host and warn about what would make its timings untrustworthy.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

THERMAL_PATH = Path("/sys/class/thermal/thermal_zone0/temp")
THROTTLED_PATH = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")
FREQ_PATH = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
GOVERNOR_PATH = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
MEMINFO_PATH = Path("/proc/meminfo")
VCGENCMD = "vcgencmd"
VCGENCMD_TIMEOUT_S = 2.0

HOT_C = 80.0  # the Pi 4/5 firmware starts throttling here (soft limit region)
CLOCK_DROP = 0.10  # a clock more than 10% lower after a run than before it

THROTTLE_BITS = {
    0: "under-voltage now",
    1: "ARM frequency capped now",
    2: "currently throttled",
    3: "soft temperature limit active now",
    16: "under-voltage has occurred",
    17: "frequency capping has occurred",
    18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}
NOW_MASK = 0xF  # bits 0-3: the state at the time of reading
UNDER_VOLTAGE_MASK = (1 << 0) | (1 << 16)
HEAT_MASK = sum(1 << bit for bit in (1, 2, 3, 17, 18, 19))

POWER_FIX = "use the official 5V/3A (Pi 4) or 5V/5A (Pi 5) supply"
COOLING_FIX = "add a heatsink or fan, or let the Pi cool"
GOVERNOR_FIX = (
    "echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor "
    "for stable timings"
)


def _read_text(path: Path) -> str | None:
    """The stripped text of a small file, or None when it is missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _read_number(path: Path, scale: float) -> float | None:
    """A file holding one number, divided by `scale`; None when missing or not a number."""
    text = _read_text(path)
    try:
        return int(text) / scale if text else None
    except ValueError:
        return None


def read_temperature_c(path: Path | None = None) -> float | None:
    """SoC temperature in degrees Celsius (the kernel reports millidegrees)."""
    return _read_number(path or THERMAL_PATH, 1000.0)


def read_cpu_freq_mhz(path: Path | None = None) -> float | None:
    """Current clock of CPU 0 in MHz (the kernel reports kHz)."""
    return _read_number(path or FREQ_PATH, 1000.0)


def read_governor(path: Path | None = None) -> str | None:
    """The cpufreq governor of CPU 0 (performance, ondemand, schedutil, ...)."""
    return _read_text(path or GOVERNOR_PATH) or None


def parse_throttled(text: str) -> int | None:
    """Throttle flags from `throttled=0x50005` (vcgencmd) or `50005` (sysfs); None if garbled."""
    value = text.strip().rpartition("=")[2].strip()
    try:
        return int(value, 16)
    except ValueError:
        return None


def _vcgencmd_throttled() -> int | None:
    exe = shutil.which(VCGENCMD)
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "get_throttled"],
            capture_output=True,
            text=True,
            timeout=VCGENCMD_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_throttled(done.stdout) if done.returncode == 0 else None


def read_throttled(path: Path | None = None, use_vcgencmd: bool = True) -> int | None:
    """Throttle flags as an int: from `vcgencmd get_throttled`, else the firmware's sysfs file.

    Args:
        path: the sysfs file to fall back on (default THROTTLED_PATH).
        use_vcgencmd: ask vcgencmd first when it is on the PATH.

    Returns:
        The flags (decode them with `describe_throttled`), or None where neither exists.
    """
    flags = _vcgencmd_throttled() if use_vcgencmd else None
    if flags is None:
        text = _read_text(path or THROTTLED_PATH)
        flags = parse_throttled(text) if text else None
    return flags


def describe_throttled(flags: int | None) -> list[str]:
    """The meaning of each set throttle bit, lowest bit first (empty for 0 or None)."""
    if not flags:
        return []
    return [text for bit, text in THROTTLE_BITS.items() if flags & (1 << bit)]


def read_mem_available_mb(path: Path | None = None) -> float | None:
    """MemAvailable from /proc/meminfo in MiB, or None where it is not reported."""
    text = _read_text(path or MEMINFO_PATH)
    for line in (text or "").splitlines():
        name, _, rest = line.partition(":")
        if name == "MemAvailable" and rest.split():
            try:
                return int(rest.split()[0]) / 1024.0
            except ValueError:
                return None
    return None


def snapshot() -> dict:
    """Temperature, throttle flags, clock and governor now (None where unavailable)."""
    throttled = read_throttled()
    return {
        "temperature_c": read_temperature_c(),
        "throttled": throttled,
        "throttled_flags": describe_throttled(throttled),
        "cpu_freq_mhz": read_cpu_freq_mhz(),
        "governor": read_governor(),
    }


def _throttle_warnings(before: dict, after: dict) -> list[str]:
    flags = after.get("throttled")
    if flags is None:
        return []
    seen_before = before.get("throttled") or 0
    relevant = (flags & NOW_MASK) | (flags & ~seen_before & ~NOW_MASK)
    warnings = []
    for mask, what, fix in (
        (UNDER_VOLTAGE_MASK, "under-voltage", POWER_FIX),
        (HEAT_MASK, "CPU throttling or frequency capping", COOLING_FIX),
    ):
        if relevant & mask:
            flags_text = ", ".join(describe_throttled(relevant & mask))
            warnings.append(f"{what} during the run ({flags_text}): {fix}, and run again")
    return warnings


def _clock_warning(before: dict, after: dict) -> list[str]:
    start, end = before.get("cpu_freq_mhz"), after.get("cpu_freq_mhz")
    if not start or end is None or end >= start * (1.0 - CLOCK_DROP):
        return []
    drop = 100.0 * (start - end) / start
    return [
        f"CPU clock dropped from {start:.0f} to {end:.0f} MHz during the run (-{drop:.0f}%): "
        f"{GOVERNOR_FIX}, keep the Pi cool, and run again"
    ]


def _heat_warning(after: dict) -> list[str]:
    temperature = after.get("temperature_c")
    if temperature is None or temperature < HOT_C:
        return []
    return [
        f"the Pi reached {temperature:.1f} C (throttling starts at {HOT_C:.0f} C): "
        f"{COOLING_FIX}, and run again"
    ]


def compare(before: dict, after: dict) -> list[str]:
    """Warnings about a run between two snapshots, one line each, each naming what to do.

    Args:
        before: `snapshot()` taken before the run.
        after: `snapshot()` taken after it.

    Returns:
        Throttling or under-voltage active now or new during the run, a clock that dropped
        by more than 10%, a temperature at or above 80 C; empty when the run looks clean.
    """
    return _throttle_warnings(before, after) + _clock_warning(before, after) + _heat_warning(after)
