"""edge.telemetry: Pi temperature, throttling, clock and governor read from a fake sysfs tree."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from edge import telemetry
from edge.bench import machine_info


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def sysfs(tmp_path, monkeypatch) -> Path:
    """Point every telemetry path into tmp_path (files absent until a test writes them)."""
    root = tmp_path / "sys"
    paths = {
        "THERMAL_PATH": root / "class/thermal/thermal_zone0/temp",
        "THROTTLED_PATH": root / "devices/platform/soc/soc:firmware/get_throttled",
        "FREQ_PATH": root / "devices/system/cpu/cpu0/cpufreq/scaling_cur_freq",
        "GOVERNOR_PATH": root / "devices/system/cpu/cpu0/cpufreq/scaling_governor",
        "MEMINFO_PATH": root / "proc/meminfo",
    }
    for name, path in paths.items():
        monkeypatch.setattr(telemetry, name, path)
    monkeypatch.setattr(telemetry, "VCGENCMD", str(tmp_path / "no such vcgencmd"))
    return root


@pytest.fixture
def pi(sysfs) -> Path:
    """A fake Pi 4 under load: 61.3 C, 1500 MHz, ondemand, throttled flags 0x50005."""
    _write(telemetry.THERMAL_PATH, "61312\n")
    _write(telemetry.FREQ_PATH, "1500000\n")
    _write(telemetry.GOVERNOR_PATH, "ondemand\n")
    _write(telemetry.THROTTLED_PATH, "50005\n")
    _write(telemetry.MEMINFO_PATH, "MemTotal:  3884300 kB\nMemAvailable:  2097152 kB\n")
    return sysfs


def test_readers_parse_the_fake_sysfs(pi):
    assert telemetry.read_temperature_c() == pytest.approx(61.312)
    assert telemetry.read_cpu_freq_mhz() == pytest.approx(1500.0)
    assert telemetry.read_governor() == "ondemand"
    assert telemetry.read_throttled() == 0x50005
    assert telemetry.read_mem_available_mb() == pytest.approx(2048.0)


def test_readers_take_an_explicit_path(tmp_path):
    temp = _write(tmp_path / "temp", "45000")
    freq = _write(tmp_path / "freq", "600000")
    governor = _write(tmp_path / "governor", "performance\n")
    throttled = _write(tmp_path / "throttled", "0x4")
    assert telemetry.read_temperature_c(temp) == 45.0
    assert telemetry.read_cpu_freq_mhz(freq) == 600.0
    assert telemetry.read_governor(governor) == "performance"
    assert telemetry.read_throttled(throttled, use_vcgencmd=False) == 4


def test_snapshot_of_a_pi(pi):
    snap = telemetry.snapshot()
    assert snap == {
        "temperature_c": pytest.approx(61.312),
        "throttled": 0x50005,
        "throttled_flags": [
            "under-voltage now",
            "currently throttled",
            "under-voltage has occurred",
            "throttling has occurred",
        ],
        "cpu_freq_mhz": 1500.0,
        "governor": "ondemand",
    }


def test_missing_files_give_none(sysfs):
    assert telemetry.read_temperature_c() is None
    assert telemetry.read_cpu_freq_mhz() is None
    assert telemetry.read_governor() is None
    assert telemetry.read_throttled() is None
    assert telemetry.read_mem_available_mb() is None
    assert telemetry.snapshot() == {
        "temperature_c": None,
        "throttled": None,
        "throttled_flags": [],
        "cpu_freq_mhz": None,
        "governor": None,
    }


def test_garbled_or_unreadable_files_give_none(sysfs):
    _write(telemetry.THERMAL_PATH, "hot\n")
    _write(telemetry.THROTTLED_PATH, "throttled=zz")
    _write(telemetry.GOVERNOR_PATH, "\n")
    telemetry.FREQ_PATH.mkdir(parents=True)  # a folder where a file should be
    _write(telemetry.MEMINFO_PATH, "MemAvailable: lots kB\n")
    assert telemetry.read_temperature_c() is None
    assert telemetry.read_throttled() is None
    assert telemetry.read_governor() is None
    assert telemetry.read_cpu_freq_mhz() is None
    assert telemetry.read_mem_available_mb() is None


def _fake_vcgencmd(tmp_path: Path, output: str, code: int = 0) -> str:
    script = _write(tmp_path / "bin" / "vcgencmd", f"#!/bin/sh\necho '{output}'\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_vcgencmd_comes_before_sysfs(pi, tmp_path, monkeypatch):
    monkeypatch.setattr(telemetry, "VCGENCMD", _fake_vcgencmd(tmp_path, "throttled=0x80008"))
    assert telemetry.read_throttled() == 0x80008
    assert telemetry.read_throttled(use_vcgencmd=False) == 0x50005


def test_a_failing_vcgencmd_falls_back_to_sysfs(pi, tmp_path, monkeypatch):
    failing = _fake_vcgencmd(tmp_path, "VCHI initialization failed", code=1)
    monkeypatch.setattr(telemetry, "VCGENCMD", failing)
    assert telemetry.read_throttled() == 0x50005


def test_parse_throttled_forms():
    assert telemetry.parse_throttled("throttled=0x50005\n") == 0x50005
    assert telemetry.parse_throttled("50005") == 0x50005
    assert telemetry.parse_throttled("0x0") == 0
    assert telemetry.parse_throttled("VCHI initialization failed") is None


def test_describe_throttled_decodes_every_bit():
    assert telemetry.describe_throttled(None) == []
    assert telemetry.describe_throttled(0) == []
    assert telemetry.describe_throttled(0x1) == ["under-voltage now"]
    assert telemetry.describe_throttled(0x2) == ["ARM frequency capped now"]
    assert telemetry.describe_throttled(0x8) == ["soft temperature limit active now"]
    assert telemetry.describe_throttled(0x20000) == ["frequency capping has occurred"]
    assert telemetry.describe_throttled(0x80000) == ["soft temperature limit has occurred"]
    assert len(telemetry.describe_throttled(0xF000F)) == 8
    assert telemetry.describe_throttled(0x10) == []  # undocumented bits are not invented


def _snap(throttled=0, freq=1500.0, temp=55.0) -> dict:
    return {
        "temperature_c": temp,
        "throttled": throttled,
        "throttled_flags": telemetry.describe_throttled(throttled),
        "cpu_freq_mhz": freq,
        "governor": "performance",
    }


def _assert_one_line_with_fix(warnings: list[str]) -> None:
    for warning in warnings:
        assert "\n" not in warning and warning.endswith("run again"), warning


def test_compare_a_clean_run_warns_nothing():
    assert telemetry.compare(_snap(), _snap()) == []
    empty = dict.fromkeys(_snap(), None)
    assert telemetry.compare(empty, empty) == []  # not a Pi: nothing to say


def test_compare_throttling_during_the_run():
    warnings = telemetry.compare(_snap(0), _snap(0x40000))
    assert len(warnings) == 1
    assert "throttling has occurred" in warnings[0] and "heatsink" in warnings[0]
    _assert_one_line_with_fix(warnings)


def test_compare_ignores_what_happened_before_the_run_but_not_what_is_active_now():
    assert telemetry.compare(_snap(0x40000), _snap(0x40000)) == []
    warnings = telemetry.compare(_snap(0x40004), _snap(0x40004))
    assert len(warnings) == 1 and "currently throttled" in warnings[0]
    assert "throttling has occurred" not in warnings[0]


def test_compare_under_voltage_names_the_power_supply():
    warnings = telemetry.compare(_snap(0), _snap(0x10000))
    assert len(warnings) == 1
    assert "under-voltage" in warnings[0] and "5V/3A" in warnings[0]
    _assert_one_line_with_fix(warnings)


def test_compare_clock_drop_over_ten_percent():
    warnings = telemetry.compare(_snap(freq=1800.0), _snap(freq=1500.0))
    assert len(warnings) == 1
    assert "1800 to 1500 MHz" in warnings[0] and "performance" in warnings[0]
    _assert_one_line_with_fix(warnings)
    assert telemetry.compare(_snap(freq=1800.0), _snap(freq=1700.0)) == []
    assert telemetry.compare(_snap(freq=None), _snap(freq=600.0)) == []


def test_compare_hot_from_eighty_degrees():
    warnings = telemetry.compare(_snap(), _snap(temp=80.0))
    assert len(warnings) == 1 and "80.0 C" in warnings[0] and "fan" in warnings[0]
    _assert_one_line_with_fix(warnings)
    assert telemetry.compare(_snap(), _snap(temp=79.9)) == []


def test_compare_reports_every_problem_of_a_bad_run():
    warnings = telemetry.compare(_snap(0), _snap(0x50005, freq=600.0, temp=84.0))
    assert len(warnings) == 4
    _assert_one_line_with_fix(warnings)


def test_machine_info_keeps_its_keys_and_adds_the_clock(sysfs):
    info = machine_info()
    assert {"cpu", "cores", "machine", "os", "python", "numpy"} <= set(info)
    assert info["frequency_mhz"] is None
    assert "governor" not in info and "temperature_c" not in info


def test_machine_info_reads_telemetry(pi):
    info = machine_info()
    assert info["governor"] == "ondemand"
    assert info["frequency_mhz"] == 1500.0
    assert info["temperature_c"] == pytest.approx(61.312)
