#!/usr/bin/env bash
# `make verify-arm64`: install and run the edge runtime in an emulated arm64 Debian (the
# system Raspberry Pi OS is built on) and check its predictions against this host's.
#
# Needs root (debootstrap, chroot, mount) on a Debian or Ubuntu x86_64 host with apt. Slow,
# and never part of `make test` or CI: the first run builds an arm64 root file system with
# debootstrap and qemu (cached under .cache/arm64-SUITE/, reused after); every run then, in a
# chroot under qemu-user,
#   1. installs the runtime with scripts/pi_install.sh: the steps firmware_notes/README.md
#      gives a Pi user, word for word (tests/test_verify_script.py checks they are the same);
#   2. runs the edge test suite (pytest -m "not host and not pi"; TensorFlow tests skip);
#   3. runs `edge info`, `edge classify` and `edge bench` on models exported on the host;
#   4. predicts the whole MNIST test set with every model, once here and once in the chroot,
#      with scripts/compare_predictions.py, and compares: top-1 match and probability
#      difference per model (int8 top-1 must be identical, else exit 1);
#   5. tries the tflite-runtime fallback (a second venv, as `make compat` makes on the host).
# Results: artifacts/verify-arm64-SUITE/ (summary.txt, compare.json, *.npz, logs).
#
# Settings (environment variables):
#   SUITE=bookworm        Debian release: bookworm (Python 3.11, numpy 1.24) or trixie (3.13)
#   QEMU_CPUS="cortex-a72 cortex-a76"  emulated CPUs: the first (cortex-a72: a Pi 4's core)
#                         runs everything; the others (cortex-a76: a Pi 5's; cortex-a53: a
#                         Pi 3's or Zero 2's) repeat the comparison for EXTRA_VARIANTS
#   EXTRA_VARIANTS=int8   variants the extra CPUs predict (comma-separated)
#   LIMIT                 predict only the first N MNIST test images (default: all 10,000)
#   TFLITE_LIMIT=2000     images the tflite-runtime fallback predicts, here and in the chroot
#                         (empty: all; float CNNs run 100-200x slower than natively under qemu)
#   MODELS                model folders, ':'-separated (default: the committed golden model,
#                         and artifacts/mnist-cnn, artifacts/mnist-pca-mlp where `make bench`
#                         exported them; nothing is trained or exported here)
#   HWR_DATA_DIR          data root holding mnist/ (default ../shared/data)
#   HOST_PYTHON           host python with the edge extra (default .venv/bin/python)
#   SKIP_TESTS=1          skip the edge test suite in the chroot
#   TFLITE_RUNTIME=0      skip the tflite-runtime fallback
#   FRESH=1               rebuild the root file system (else reused when complete)
#   MIRROR                Debian mirror (default http://deb.debian.org/debian)
# `scripts/verify_arm64.sh rootfs` only builds (or checks) the cached root file system.
#
# Two things differ from a Pi on purpose, both for the emulation: the chroot gets an arm64
# /proc/cpuinfo (qemu-user 7.2 shows the host's x86 one, on which LiteRT crashes), and trusts
# the host's local CAs (/usr/local/share/ca-certificates: a proxy that re-signs HTTPS).
# Timings under qemu are not Pi timings; the script never reports them as such.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
read -r -a CPUS <<<"${QEMU_CPUS:-cortex-a72 cortex-a76}"
EXTRA_VARIANTS=${EXTRA_VARIANTS:-int8}
LIMIT_ARGS=()
[ -z "${LIMIT:-}" ] || LIMIT_ARGS=(--limit "$LIMIT")
TFLITE_LIMIT=${TFLITE_LIMIT-2000}
TFLITE_ARGS=()
[ -z "$TFLITE_LIMIT" ] || TFLITE_ARGS=(--limit "$TFLITE_LIMIT")
CACHE=$REPO/.cache/arm64-$SUITE
ROOTFS=$CACHE/rootfs
PIP_CACHE=$CACHE/pip-cache
OUT=$REPO/artifacts/verify-arm64-$SUITE
HOST_PYTHON=${HOST_PYTHON:-$REPO/.venv/bin/python}
if [ -z "${HWR_DATA_DIR:-}" ] && [ -d "$REPO/../shared/data" ]; then
  HWR_DATA_DIR=$(cd "$REPO/../shared/data" && pwd)
fi
# What debootstrap puts in the image: a Raspberry Pi OS Lite-like base (python3, sudo,
# certificates). pi_install.sh's own `apt install` adds python3-venv and python3-numpy.
INCLUDE=python3,sudo,ca-certificates
STARTED=$SECONDS

step() { printf '\n==> [%s] %s\n' "$(elapsed)" "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf 'verify-arm64: %s\n' "$*" >&2; exit 2; }
elapsed() { local s=$((SECONDS - STARTED)); printf '%d:%02d' $((s / 60)) $((s % 60)); }

# --- mounts: everything this script mounts lies under $ROOTFS and is undone on exit --------

mounts_under() {  # mount points at or below $1, deepest first
  local root=$1 target
  while read -r _ target _; do
    target=$(printf '%b' "$target")  # /proc/self/mounts escapes spaces as \040
    if [[ $target == "$root" || $target == "$root"/* ]]; then printf '%s\n' "$target"; fi
  done </proc/self/mounts | sort -r
}

unmount_all() {
  local m
  mounts_under "$1" | while IFS= read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}

safe_rm() {  # rm -rf a folder only once nothing is mounted below it (a bound /dev!)
  [ -e "$1" ] || return 0
  unmount_all "$1"
  if [ -n "$(mounts_under "$1")" ]; then die "cannot unmount everything under $1: unmount it by hand"; fi
  rm -rf --one-file-system "$1"
}

cleanup() { [ -d "$ROOTFS" ] && unmount_all "$ROOTFS"; [ -d "$ROOTFS.tmp" ] && unmount_all "$ROOTFS.tmp"; true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- host: tools and the aarch64 binfmt handler ---------------------------------------------

host_tools() {
  [ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount): run it as root or with sudo"
  [ "$(uname -m)" = x86_64 ] || info "host is $(uname -m), not x86_64: carrying on"
  local pkg missing=()
  for pkg in debootstrap qemu-user-static binfmt-support; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing on the host: ${missing[*]}"
    command -v apt-get >/dev/null || die "no apt-get: install ${missing[*]} by hand"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >"$CACHE/host-apt.log" 2>&1 \
      || { apt-get update -q >>"$CACHE/host-apt.log" 2>&1 \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$CACHE/host-apt.log" 2>&1; } \
      || die "apt-get install ${missing[*]} failed (see $CACHE/host-apt.log)"
  fi
  local binfmt=/proc/sys/fs/binfmt_misc
  [ -e $binfmt/register ] || mount -t binfmt_misc binfmt_misc $binfmt 2>/dev/null || true
  if ! grep -qs '^enabled' $binfmt/qemu-aarch64; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  fi
  grep -qs '^enabled' $binfmt/qemu-aarch64 \
    || die "no aarch64 binfmt handler: run 'update-binfmts --enable qemu-aarch64' (binfmt_misc must be mounted at $binfmt)"
  # F (fix binary): the kernel opens qemu now, so the arm64 chroot needs no copy of it.
  grep -qs '^flags:.*F' $binfmt/qemu-aarch64 \
    || die "the aarch64 binfmt handler lacks the F flag: reinstall qemu-user-static (Debian's registers it with F)"
  info "qemu: $(qemu-aarch64-static --version | head -1); binfmt qemu-aarch64: $(grep '^flags' $binfmt/qemu-aarch64)"
}

# --- the arm64 root file system, built once -------------------------------------------------

build_rootfs() {
  if [ "${FRESH:-0}" = 1 ]; then step "FRESH=1: removing $ROOTFS"; safe_rm "$ROOTFS"; fi
  if [ -f "$ROOTFS/.hwr-complete" ]; then
    step "reusing the arm64 $SUITE root file system in ${ROOTFS#"$REPO"/} (FRESH=1 rebuilds it)"
    return
  fi
  safe_rm "$ROOTFS"  # a folder without the marker is a half-made one
  safe_rm "$ROOTFS.tmp"
  step "debootstrap --arch=arm64 $SUITE (once; about 10-20 min under emulation; log: ${CACHE#"$REPO"/}/debootstrap.log)"
  if ! debootstrap --arch=arm64 --variant=minbase --include="$INCLUDE" \
    "$SUITE" "$ROOTFS.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
    tail -n 15 "$CACHE/debootstrap.log" >&2
    unmount_all "$ROOTFS.tmp"
    die "debootstrap failed (log: $CACHE/debootstrap.log)"
  fi
  unmount_all "$ROOTFS.tmp"
  local R=$ROOTFS.tmp
  # apt sources as on Raspberry Pi OS: the release, its updates and security (main only).
  cat >"$R/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
SOURCES
  printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"  # no daemons start in the chroot
  chmod +x "$R/usr/sbin/policy-rc.d"
  printf '127.0.0.1 localhost %s\n' "$(hostname)" >"$R/etc/hosts"  # sudo resolves the host name
  cp /etc/resolv.conf "$R/etc/resolv.conf"
  date -u +%Y-%m-%dT%H:%M:%SZ >"$R/.hwr-complete"
  mv "$R" "$ROOTFS"
  info "built in $(elapsed)"
}

# --- the chroot: mounts, environment, the working tree and the models -----------------------

mount_chroot() {
  unmount_all "$ROOTFS"  # leftovers of a run that was killed
  mount -t proc proc "$ROOTFS/proc"
  mount_cpuinfo "$CPU"
  mount -t sysfs -o ro sysfs "$ROOTFS/sys"
  mount --rbind /dev "$ROOTFS/dev"
  mount --make-rslave "$ROOTFS/dev"  # nothing done under the chroot's /dev reaches the host's
  mkdir -p "$ROOTFS/mnt/data" "$ROOTFS/root/.cache/pip" "$ROOTFS/root/results" "$PIP_CACHE" "$OUT"
  mount --bind "$HWR_DATA_DIR" "$ROOTFS/mnt/data"
  mount -o remount,bind,ro "$ROOTFS/mnt/data"
  mount --bind "$PIP_CACHE" "$ROOTFS/root/.cache/pip"  # wheels downloaded once, kept in .cache
  mount --bind "$OUT" "$ROOTFS/root/results"
}

# qemu-user 7.2 shows arm64 programs the host's own x86 /proc/cpuinfo, and LiteRT (its cpuinfo
# library) crashes parsing it (SIGSEGV on creating any interpreter). A real Pi shows its arm64
# one: mount one like it, for the emulated core, with a "model name" that says it is emulated.
cpu_part() {
  case $1 in
    cortex-a53) echo "0xd03 0x0 4 fp asimd evtstrm crc32 cpuid" ;;
    cortex-a72) echo "0xd08 0x0 3 fp asimd evtstrm crc32 cpuid" ;;
    cortex-a76) echo "0xd0b 0x4 1 fp asimd evtstrm crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
    *) return 1 ;;
  esac
}

mount_cpuinfo() {  # mount_cpuinfo CPU: a /proc/cpuinfo as an arm64 kernel writes it
  local cpu=$1 desc part variant revision features i file=$CACHE/cpuinfo-$1
  desc=$(cpu_part "$cpu") || die "QEMU_CPUS: $cpu: use cortex-a53, cortex-a72 or cortex-a76"
  read -r part variant revision features <<<"$desc"
  : >"$file"
  for ((i = 0; i < $(nproc); i++)); do
    printf 'processor\t: %d\nmodel name\t: %s under qemu-aarch64 (emulated, not a Raspberry Pi)\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
      "$i" "$cpu" "$features" "$variant" "$part" "$revision" >>"$file"
  done
  if grep -qs " $ROOTFS/proc/cpuinfo " /proc/self/mounts; then umount "$ROOTFS/proc/cpuinfo"; fi
  mount --bind "$file" "$ROOTFS/proc/cpuinfo"
}

EXTRA_ENV=()
in_chroot() {  # in_chroot CPU 'bash commands': as root in /root, with a clean environment
  local cpu=$1
  shift
  QEMU_CPU=$cpu chroot "$ROOTFS" /usr/bin/env -i HOME=/root USER=root LOGNAME=root \
    LANG=C.UTF-8 TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HWR_DATA_DIR=/mnt/data QEMU_CPU="$cpu" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off \
    PYTHONDONTWRITEBYTECODE=1 "${EXTRA_ENV[@]}" /bin/bash -euo pipefail -c "cd /root && $*"
}

trust_host_cas() {  # a network whose HTTPS goes through a proxy with its own CA (as here)
  local src=/usr/local/share/ca-certificates dst=$ROOTFS/usr/local/share/ca-certificates
  compgen -G "$src/*.crt" >/dev/null || return 0
  if ! diff -rq "$src" "$dst" >/dev/null 2>&1; then
    rm -rf "$dst" && mkdir -p "$dst" && cp "$src"/*.crt "$dst/"
    in_chroot "$CPU" 'update-ca-certificates' >"$CACHE/ca.log" 2>&1 \
      || die "update-ca-certificates failed in the chroot (log: $CACHE/ca.log)"
  fi
  info "the host's local CAs ($(cd "$src" && ls ./*.crt | sed 's|^\./||' | tr '\n' ' ')) are trusted in the chroot too"
}

copy_tree() {  # the working tree as git sees it: tracked files plus untracked, unignored ones
  git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1 || die "$REPO is not a git checkout"
  safe_rm "$ROOTFS/root/hwr-pi"
  mkdir -p "$ROOTFS/root/hwr-pi"
  git -C "$REPO" ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -f "$REPO/$f" ] && printf '%s\0' "$f"; done \
    | tar -C "$REPO" --null -T - -cf - | tar -C "$ROOTFS/root/hwr-pi" -xf -
  info "$(find "$ROOTFS/root/hwr-pi" -type f | wc -l) files of the working tree ($(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD || echo ', with uncommitted changes')) in /root/hwr-pi"
}

MODEL_DIRS=()
CHROOT_MODELS=""  # the same folders as /root/models/NAME, quoted for bash
locate_models() {
  if [ -n "${MODELS:-}" ]; then
    IFS=: read -r -a MODEL_DIRS <<<"$MODELS"
  else
    MODEL_DIRS=("tests/fixtures/golden model")
    local d
    for d in artifacts/mnist-cnn artifacts/mnist-pca-mlp; do
      [ -f "$d/int8.tflite" ] && MODEL_DIRS+=("$d")
    done
    [ ${#MODEL_DIRS[@]} -gt 1 ] \
      || info "no artifacts/mnist-cnn or artifacts/mnist-pca-mlp: only the golden model (int8); 'make bench' exports all four variants"
  fi
  safe_rm "$ROOTFS/root/models"
  local dir name
  for dir in "${MODEL_DIRS[@]}"; do
    [ -d "$dir" ] || die "MODELS: $dir is not a folder of exported models"
    name=$(basename "$dir")
    [ ! -e "$ROOTFS/root/models/$name" ] || die "MODELS: two folders are named $name"
    mkdir -p "$ROOTFS/root/models/$name"
    cp "$dir"/*.tflite "$dir"/*.json "$ROOTFS/root/models/$name/"
    [ ! -f "$dir/test-split.npz" ] || cp "$dir/test-split.npz" "$ROOTFS/root/models/$name/"
    CHROOT_MODELS+="$(printf '%q' "models/$name") "
    info "$dir: $(cd "$dir" && ls ./*.tflite | sed 's|^\./||' | tr '\n' ' ')"
  done
}

# --- the run -------------------------------------------------------------------------------

FAILED=()
SUMMARY=$OUT/summary.txt
note() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }
no_info() { grep --line-buffered -v '^INFO: ' || true; }  # LiteRT's "INFO: Created ... XNNPACK delegate"

mkdir -p "$CACHE"
host_tools
build_rootfs
[ "${1:-}" = rootfs ] && exit 0

CPU=${CPUS[0]}
for cpu in "${CPUS[@]}"; do
  cpu_part "$cpu" >/dev/null || die "QEMU_CPUS: $cpu: use cortex-a53, cortex-a72 or cortex-a76"
done
[ -n "${HWR_DATA_DIR:-}" ] && [ -f "$HWR_DATA_DIR/mnist/t10k-images-idx3-ubyte.gz" ] \
  || die "no MNIST test files under HWR_DATA_DIR=${HWR_DATA_DIR:-unset}: set it to the data root (mnist/ inside)"
[ -x "$HOST_PYTHON" ] && "$HOST_PYTHON" -c 'import edge.interpreter as i; i.load_backend()' 2>/dev/null \
  || die "no edge runtime in HOST_PYTHON=$HOST_PYTHON: run 'make setup' (or set HOST_PYTHON)"
export HWR_DATA_DIR
mkdir -p "$OUT"
rm -f "$OUT"/*.npz "$OUT"/*.log "$OUT"/*.json "$SUMMARY"
note "verify-arm64 $(date -u +%Y-%m-%dT%H:%MZ): Debian $SUITE arm64 under $(qemu-aarch64-static --version | head -1), QEMU_CPU=${CPUS[*]}"
note "host: $(uname -m), $(nproc) cores, $("$HOST_PYTHON" -c 'import platform, numpy; print("Python", platform.python_version(), "numpy", numpy.__version__)')"

step "mounting /proc (with an arm64 /proc/cpuinfo), /sys, /dev, the data (read-only) and the pip cache in the chroot"
mount_chroot
step "copying the working tree and the models into the chroot"
trust_host_cas
copy_tree
locate_models

step "host: predicting MNIST test with every model ($HOST_PYTHON)"
"$HOST_PYTHON" scripts/compare_predictions.py predict "${MODEL_DIRS[@]}" --dataset mnist \
  "${LIMIT_ARGS[@]}" --out "$OUT/host.npz" 2>&1 | no_info | tee "$OUT/host-predict.log"
COMPAT_HOST=$REPO/.venv-tflite214/bin/python
if [ "${TFLITE_RUNTIME:-1}" != 0 ] && [ -x "$COMPAT_HOST" ] \
  && "$COMPAT_HOST" -c 'import tflite_runtime' 2>/dev/null; then
  step "host: the same with tflite-runtime ($COMPAT_HOST, from 'make compat')"
  "$COMPAT_HOST" scripts/compare_predictions.py predict "${MODEL_DIRS[@]}" --dataset mnist \
    "${TFLITE_ARGS[@]}" --out "$OUT/host-tflite_runtime.npz" 2>&1 | no_info | tee "$OUT/host-tflite-predict.log"
fi

T0=$SECONDS
step "chroot: installing the runtime as firmware_notes/README.md says (bash hwr-pi/scripts/pi_install.sh; log: install.log)"
if ! in_chroot "$CPU" 'rm -rf ~/hwr-venv && bash hwr-pi/scripts/pi_install.sh' >"$OUT/install.log" 2>&1; then
  tail -n 20 "$OUT/install.log" >&2
  die "the firmware notes' install steps failed in arm64 $SUITE (log: $OUT/install.log)"
fi
note "install (scripts/pi_install.sh, as the notes say): $((SECONDS - T0)) s"
note "arm64 venv: $(in_chroot "$CPU" '. ~/hwr-venv/bin/activate && python hwr-pi/scripts/compare_predictions.py env' 2>&1 | no_info)"
in_chroot "$CPU" '. ~/hwr-venv/bin/activate && pip list 2>/dev/null' >"$OUT/pip-list.txt" 2>&1 || true

TFLITE_OK=0
if [ "${TFLITE_RUNTIME:-1}" != 0 ]; then
  T0=$SECONDS
  step "chroot: tflite-runtime fallback: a second venv with tflite-runtime 2.14, as 'make compat' (log: tflite-install.log)"
  if in_chroot "$CPU" 'rm -rf ~/tflite-venv && python3 -m venv --system-site-packages ~/tflite-venv
      . ~/tflite-venv/bin/activate
      pip install --only-binary=:all: "tflite-runtime==2.14.0" "numpy>=1.24,<2" "opencv-python-headless>=4.6,<4.12"
      pip install --no-deps ./hwr-pi
      HWR_BACKEND=tflite_runtime edge info "models/golden model/int8.tflite"' >"$OUT/tflite-install.log" 2>&1; then
    TFLITE_OK=1
    note "tflite-runtime 2.14: installs and loads the golden model ($((SECONDS - T0)) s)"
    EXTRA_ENV=(HWR_COMPAT_PYTHON=/root/tflite-venv/bin/python)  # test_backends' compat tests run
  else
    note "tflite-runtime 2.14: does not install or run here: $(grep -m1 -E 'ERROR|Error' "$OUT/tflite-install.log" || tail -n 1 "$OUT/tflite-install.log")"
  fi
fi

if [ "${SKIP_TESTS:-0}" != 1 ]; then
  T0=$SECONDS
  step "chroot: the edge test suite: pytest -m 'not host and not pi' (log: pytest.log)"
  in_chroot "$CPU" '. ~/hwr-venv/bin/activate && pip install -q pytest' >"$OUT/pytest-install.log" 2>&1 \
    || die "pip install pytest failed (log: $OUT/pytest-install.log)"
  if in_chroot "$CPU" '. ~/hwr-venv/bin/activate && cd hwr-pi && python -m pytest -m "not host and not pi" -q -p no:cacheprovider -ra --junitxml=/root/results/pytest.xml' 2>&1 | tee "$OUT/pytest.log"; then
    note "edge tests: $(tail -n 1 "$OUT/pytest.log") ($((SECONDS - T0)) s)"
  else
    note "edge tests FAILED: $(tail -n 1 "$OUT/pytest.log") ($((SECONDS - T0)) s)"
    FAILED+=("edge tests")
  fi
fi

T0=$SECONDS
step "chroot: edge info, edge classify, edge bench"
BENCH_MODELS=$("$HOST_PYTHON" - "${MODEL_DIRS[@]}" <<'PY'
import hashlib, shlex, sys
from pathlib import Path
seen = set()
for d in sys.argv[1:]:
    f = Path(d) / "int8.tflite"
    if f.is_file():
        sha = hashlib.sha256(f.read_bytes()).hexdigest()
        if sha not in seen:
            seen.add(sha)
            print(shlex.quote(f"models/{Path(d).name}/int8.tflite"), end=" ")
PY
)
GOLDEN='"models/golden model/int8.tflite"'
IMAGES='"hwr-pi/tests/fixtures/golden model/images"'
if in_chroot "$CPU" ". ~/hwr-venv/bin/activate
    edge info $GOLDEN
    edge classify $GOLDEN $IMAGES --json results/classify-arm64.json
    edge bench $BENCH_MODELS --dataset mnist --runs 300 --warmup 20 --min-seconds 1 --json results/bench-arm64.json" \
  >"$OUT/cli.log" 2>&1; then
  note "edge info, classify, bench: ok ($((SECONDS - T0)) s; emulated timings, not a Pi's)"
  "$HOST_PYTHON" -m edge classify "tests/fixtures/golden model/int8.tflite" "tests/fixtures/golden model/images" \
    --json "$OUT/classify-host.json" >/dev/null 2>&1 || true
  "$HOST_PYTHON" - "$OUT/classify-host.json" "$OUT/classify-arm64.json" <<'PY' | tee -a "$SUMMARY" || FAILED+=("edge classify")
import json, sys
def readings(path):
    out = {}
    for p in json.load(open(path))["predictions"]:
        out[p["image"].rsplit("/", 1)[-1]] = (p["text"], [c["confidence"] for c in p["chars"]])
    return out
host, arm = readings(sys.argv[1]), readings(sys.argv[2])
same = sum(k in host and host[k][0] == text for k, (text, _) in arm.items())
diff = max((abs(a - b) for k, (_, conf) in arm.items() if k in host for a, b in zip(conf, host[k][1])), default=0.0)
print(f"edge classify, {len(arm)} golden images: {same} read the same on arm64 as on the host, confidences differ by at most {diff:.4f}")
sys.exit(0 if arm and same == len(arm) == len(host) else 1)
PY
  "$HOST_PYTHON" - "$OUT/bench-arm64.json" <<'PY' | tee -a "$SUMMARY" || true
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"edge bench (arm64): {r['path']}: {r['backend']} {r['backend_version']}, accuracy {r['accuracy']:.2%} "
          f"on {r['samples']} images, p50 {r['latency']['p50']:.3f} ms under qemu (not a Pi timing)")
PY
else
  tail -n 20 "$OUT/cli.log" >&2
  note "edge info / classify / bench FAILED (log: cli.log)"
  FAILED+=("edge CLI")
fi

compare_run() {  # compare_run REFERENCE.npz OTHER.npz LABELS NAME [--variants V]
  if "$HOST_PYTHON" scripts/compare_predictions.py compare "$1" "$2" --labels "$3" \
    --require-identical int8 --json "$OUT/compare-$4.json" "${@:5}" 2>&1 | tee -a "$SUMMARY"; then
    return 0
  fi
  FAILED+=("predictions $4")
}

for cpu in "${CPUS[@]}"; do
  T0=$SECONDS
  only=()
  what="every model"
  if [ "$cpu" != "$CPU" ]; then
    only=(--variants "$EXTRA_VARIANTS")
    what="the $EXTRA_VARIANTS models"
    mount_cpuinfo "$cpu"
  fi
  step "chroot ($cpu): predicting MNIST test with $what (ai-edge-litert; log: arm64-$cpu-predict.log)"
  note ""
  if in_chroot "$cpu" ". ~/hwr-venv/bin/activate && python hwr-pi/scripts/compare_predictions.py predict $CHROOT_MODELS --dataset mnist ${LIMIT_ARGS[*]} ${only[*]} --out results/arm64-$cpu.npz" \
    2>&1 | no_info | tee "$OUT/arm64-$cpu-predict.log"; then
    note "predictions, arm64 $cpu (LiteRT) against the host (LiteRT): $((SECONDS - T0)) s in the chroot"
    compare_run "$OUT/host.npz" "$OUT/arm64-$cpu.npz" host,arm64 "$cpu" "${only[@]}"
  else
    note "predictions, arm64 $cpu: FAILED (log: arm64-$cpu-predict.log)"
    FAILED+=("predictions $cpu")
  fi
done
[ ${#CPUS[@]} -eq 1 ] || mount_cpuinfo "$CPU"

if [ "$TFLITE_OK" = 1 ]; then
  T0=$SECONDS
  step "chroot ($CPU): predicting ${TFLITE_LIMIT:-all} MNIST test images with tflite-runtime 2.14 (log: arm64-tflite-predict.log)"
  note ""
  if in_chroot "$CPU" ". ~/tflite-venv/bin/activate && python hwr-pi/scripts/compare_predictions.py predict $CHROOT_MODELS --dataset mnist ${TFLITE_ARGS[*]} --out results/arm64-$CPU-tflite_runtime.npz" \
    2>&1 | no_info | tee "$OUT/arm64-tflite-predict.log"; then
    if [ -f "$OUT/host-tflite_runtime.npz" ]; then
      note "predictions, arm64 $CPU (tflite-runtime) against the host (tflite-runtime): $((SECONDS - T0)) s in the chroot"
      compare_run "$OUT/host-tflite_runtime.npz" "$OUT/arm64-$CPU-tflite_runtime.npz" host-tflite,arm64-tflite "$CPU-tflite_runtime"
    else
      note "predictions with tflite-runtime in the chroot: done, but no host run to compare with (make compat)"
    fi
  else
    note "predictions with tflite-runtime: FAILED (log: arm64-tflite-predict.log)"
    FAILED+=("predictions tflite-runtime")
  fi
fi

note ""
note "wall time: $(elapsed) (results: ${OUT#"$REPO"/}/)"
if [ ${#FAILED[@]} -gt 0 ]; then
  note "verify-arm64 FAILED: ${FAILED[*]}"
  exit 1
fi
note "verify-arm64 passed: Debian $SUITE arm64"
