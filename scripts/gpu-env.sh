# Sourced by the GPU scripts (gpu-check.sh, gpu-sweep.sh, gpu-profile.sh) from the repository
# root on a lent GPU machine: unpacks the binaries scripts/gpu-build.sh packed, links
# /work/main to this copy (the test binaries were built there and find their data through
# it), and puts the NVRTC that matches the driver first on the loader's path (a newer one's
# output may not load): the machine's toolkit. Sets `root` and `bin`.
root="$PWD"
bin="$root/.gpu-bin"
if [ -f "$bin/bin.tar.xz" ] && [ ! -e "$bin/gradcam" ]; then tar xJf "$bin/bin.tar.xz" -C "$bin"; fi
# Only where /work/main is not a real folder: run elsewhere, ln would put a link inside it.
if [ "$root" != /work/main ] && { [ -L /work/main ] || [ ! -e /work/main ]; }; then
  mkdir -p /work && ln -sfn "$root" /work/main
fi
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
  /usr/local/cuda-13.0/targets/x86_64-linux/lib; do
  if [ -e "$d/libnvrtc.so.13" ] || [ -e "$d/libnvrtc.so" ]; then
    export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
    break
  fi
done
