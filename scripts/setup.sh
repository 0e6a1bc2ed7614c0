#!/usr/bin/env bash
# Idempotent setup: Debian packages, npm ci, the native libtorch binding,
# better-sqlite3 built from source, the viewer page's static build.
# Each step is skipped when it is already done, so running it again is cheap.
#
#   bash scripts/setup.sh run    what running medseg needs (scripts/main.sh)
#   bash scripts/setup.sh test   that, plus the references the tests compare
#                                against (scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

profile=${1:-run}

# 1. System packages. Running: libtorch for the engine (with libgloo-dev:
#    libtorch-dev's headers include gloo's without depending on it, and the
#    binding's data-parallel part, native/src/distributed.cc, compiles against
#    c10d's ProcessGroupGloo, whose code is in libtorch_cpu); g++,
#    make and python3 for node-gyp to build the binding. Testing adds the
#    Python references (PyTorch, NumPy, SciPy, scikit-image, scikit-learn for the
#    classification metrics' AUC reference, nibabel, pydicom with
#    gdcm's Python codecs for the io bench's compressed reads, PIL),
#    Chromium for the report screenshot test, the DICOM tools the tests
#    make compressed files with and compare against (dcmtk, gdcm, OpenJPH for
#    HTJ2K, dcm2niix, dicom3tools' dciodvfy), jemalloc and tcmalloc
#    (gperftools) for the train-step benches' tuned-allocator PyTorch peers,
#    elastix (the registration bench's B-spline peer),
#    Orthanc with its DICOMweb plugin, the PACS the service's DICOMweb
#    tests start (each on free ports, with a configuration of its own), and
#    PostgreSQL, the job queue's second store (the tests and the serve bench
#    start throw-away clusters on loopback; the package's own cluster is not used).
RUN_PACKAGES=(libtorch-dev libgloo-dev g++ make python3)
TEST_PACKAGES=(python3-torch python3-numpy python3-scipy python3-nibabel python3-pydicom python3-gdcm python3-pil python3-skimage python3-sklearn chromium
  dcmtk libgdcm-tools openssl openjph-tools dcm2niix dicom3tools libjemalloc2 libgoogle-perftools4 orthanc orthanc-dicomweb postgresql elastix)
case "$profile" in
  run) APT_PACKAGES=("${RUN_PACKAGES[@]}") ;;
  test) APT_PACKAGES=("${RUN_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  *) echo "usage: bash scripts/setup.sh [run|test]" >&2; exit 64 ;;
esac
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  # No package's service is started by the install (policy-rc.d answers 101,
  # "action forbidden"): Debian's orthanc would otherwise run as a system
  # daemon on ports 8042 and 4242, which nothing here uses.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    made_policy=1
  fi
  status=0
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
  if [ "$made_policy" = 1 ]; then $SUDO rm -f "$policy"; fi
  [ "$status" = 0 ] || exit "$status"
else
  log "Debian packages present"
fi

# 2. npm dependencies, reinstalled only when package-lock.json changed.
stamp=node_modules/.medseg-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
else
  log "npm dependencies up to date"
fi

# 3. The N-API binding to libtorch, rebuilt only when its sources changed
#    (a checkout that brings new native sources makes them newer than the addon).
addon=packages/torch/build/Release/torch_native.node
if [ ! -f "$addon" ] || [ -n "$(find packages/torch/native packages/torch/binding.gyp -newer "$addon" -type f 2>/dev/null)" ]; then
  log "building the libtorch binding (about a minute)"
  (cd packages/torch && npx --no-install node-gyp rebuild --nodedir=/usr -j "$(nproc)" --loglevel=error >/dev/null)
else
  log "libtorch binding up to date"
fi

# 4. better-sqlite3 (packages/server's job queue) from the SQLite sources it
#    ships. Its install script would first try to download a prebuilt binary,
#    so allowScripts in package.json denies it and the addon is built here,
#    offline, against Node's headers in /usr (about two minutes on 2 cores).
#    npm ci removes the build, and a new version brings new sources: both
#    trigger a rebuild.
sqlite_addon=node_modules/better-sqlite3/build/Release/better_sqlite3.node
if [ ! -f "$sqlite_addon" ] || [ node_modules/better-sqlite3/package.json -nt "$sqlite_addon" ]; then
  log "building better-sqlite3 from its bundled SQLite sources (about two minutes)"
  # The compiler's warnings on SQLite's sources go to a log shown only if the build fails.
  sqlite_log=$(mktemp)
  if ! (cd node_modules/better-sqlite3 && npx --no-install node-gyp rebuild --release --nodedir=/usr -j "$(nproc)" --loglevel=error) >"$sqlite_log" 2>&1; then
    cat "$sqlite_log" >&2
    rm -f "$sqlite_log"
    exit 1
  fi
  rm -f "$sqlite_log"
else
  log "better-sqlite3 up to date"
fi

# 5. The viewer page's static build (packages/web/dist), which the service
#    serves at /viewer/: rebuilt with Vite (a few seconds) when a source it
#    bundles is newer than the build. Its browser test rebuilds it the same way.
viewer=packages/web/dist/index.html
if [ ! -f "$viewer" ] || [ -n "$(find packages/web/src packages/web/index.html packages/web/vite.config.ts packages/medseg/src/deploy packages/medseg/src/infer packages/medseg/src/data packages/medseg/src/plan -newer "$viewer" -type f ! -name '*.test.ts' 2>/dev/null | head -1)" ]; then
  log "building the viewer page (packages/web/dist)"
  npm run build:web --silent >/dev/null
else
  log "viewer page up to date"
fi
