#!/usr/bin/env bash
# host/examples/run_examples.sh STAGE CUDA CUDA_HOME — builds host/examples against the library installed in STAGE
# (make install DESTDIR=STAGE PREFIX=/usr/local; `make examples` does both) through pkg-config, linked statically
# (a copy of the install without the shared library) and dynamically, and runs them: the README example with the
# embedded model and with SiT + refiner + VAE files (random models), the render loop streaming y4m (checked with
# ffmpeg when it is installed). With CUDA=1 the device-memory render loop is built too (run only with a GPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=$(realpath "$1") cuda=$2 cuda_home=$3
ex=$(dirname "$stage")/examples static=$stage-static
rm -rf "$ex" "$static" && mkdir -p "$ex" && cp -a "$stage" "$static" && rm -f "$static"/usr/local/lib/libflowturbo.so*
pc() { # pkg-config of an install tree
    PKG_CONFIG_PATH=$1/usr/local/lib/pkgconfig pkg-config --define-variable=prefix="$1/usr/local" "${@:2}" flowturbo
}
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '; }
fail() { echo "examples: FAIL: $*" >&2; exit 1; }
CC=${CC:-gcc}
CFLAGS="-std=c11 -O2 -Wall -Wextra -Werror -D_DEFAULT_SOURCE"

echo "examples: pkg-config --static --libs: $(pc "$static" --static --libs)"
echo "examples: pkg-config --libs:          $(pc "$stage" --libs)"
$CC $CFLAGS host/examples/readme_example.c $(pc "$static" --cflags --static --libs) -o "$ex/readme_static"
$CC $CFLAGS host/examples/readme_example.c $(pc "$stage" --cflags --libs) -o "$ex/readme_shared"
$CC $CFLAGS host/examples/render_loop.c $(pc "$static" --cflags --static --libs) -o "$ex/render_loop"
for exe in readme_static render_loop; do # the library's own dependencies only
    n=$(needed "$ex/$exe")
    case "$n" in *flowturbo* | *png* | *libz.* | *microhttpd* | *turbojpeg*) fail "$exe needs: $n" ;; esac
done
case "$(needed "$ex/readme_shared")" in *libflowturbo.so.0*) ;; *) fail "readme_shared does not use libflowturbo.so" ;; esac
echo "examples: static build needs: $(needed "$ex/readme_static")"

# the README example writes readme_example.ppm (8 images of 32x32, stacked) in the current directory
readme_run() ( # EXE OUT.ppm [MODEL FILES...]
    dir=$(mktemp -d "$ex/run.XXXXXX") && cd "$dir" && "$1" "${@:3}" && mv readme_example.ppm "$2" && rmdir "$dir"
)
readme_run "$ex/readme_static" "$ex/readme_static.ppm"
LD_LIBRARY_PATH=$stage/usr/local/lib readme_run "$ex/readme_shared" "$ex/readme_shared.ppm"
[ "$(head -c 14 "$ex/readme_static.ppm")" = "$(printf 'P6\n32 256\n255\n')" ] || fail "readme example: bad PPM header"
cmp -s "$ex/readme_static.ppm" "$ex/readme_shared.ppm" || fail "static and shared README examples differ"
echo "examples: README example (embedded model), static and shared: identical 8 images of 32x32"

models=$ex/models && mkdir -p "$models"
common="--input-size 8 --patch 2 --hidden 64 --depth 2 --heads 4 --in-channels 4 --num-classes 1000"
py=${PYTHON:-/usr/bin/python3}
$py weights_tool/convert.py random --kind sit $common -o "$models/sit.safetensors" >/dev/null
$py weights_tool/convert.py random --kind refiner $common -o "$models/refiner.safetensors" >/dev/null
$py weights_tool/convert.py random --kind vae --vae-preset tiny -o "$models/vae.safetensors" >/dev/null
readme_run "$ex/readme_static" "$ex/files.ppm" "$models/sit.safetensors" "$models/refiner.safetensors" "$models/vae.safetensors"
[ "$(head -c 14 "$ex/files.ppm")" = "$(printf 'P6\n32 256\n255\n')" ] || fail "README example with files: bad PPM"
echo "examples: README example with SiT + refiner + VAE files: 8 images of 32x32"

"$ex/render_loop" --fps 30 --frames 24 --threads 2 --sampler H1P3R2 --steps-per-seed 8 -o "$ex/walk.y4m"
[ "$(head -c 9 "$ex/walk.y4m")" = "YUV4MPEG2" ] || fail "render loop: not a y4m stream"
frames=$($py -c 'import sys, re
d = open(sys.argv[1], "rb").read(); head, _, rest = d.partition(b"\n")
w, h = (int(re.search(rb" %s(\d+)" % k, head).group(1)) for k in (b"W", b"H")); n = 6 + 3 * w * h
ok = len(rest) % n == 0 and all(rest[i:i + 6] == b"FRAME\n" for i in range(0, len(rest), n))
print(len(rest) // n if ok else "malformed")' "$ex/walk.y4m")
[ "$frames" = 24 ] || fail "render loop: $frames frames in the y4m stream, expected 24"
if command -v ffprobe >/dev/null; then
    n=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames,width,height -of csv=p=0 "$ex/walk.y4m")
    [ "$n" = "256,256,24" ] || fail "render loop: ffprobe reads '$n', expected 256,256,24"
    ffmpeg -v error -y -i "$ex/walk.y4m" -vf "select=eq(n\,0)+eq(n\,4)+eq(n\,8)+eq(n\,12),scale=128:128,tile=4x1" \
        -frames:v 1 "$ex/walk.png"
    echo "examples: ffprobe decodes the y4m stream: 24 frames of 256x256 (strip of frames 0, 4, 8, 12: $ex/walk.png)"
else
    echo "examples: ffmpeg not installed: y4m checked by its header and FRAME markers only"
fi

if [ "$cuda" = 1 ]; then
    $CC $CFLAGS -DRENDER_LOOP_CUDA -I"$cuda_home/include" host/examples/render_loop.c \
        $(pc "$static" --cflags --static --libs) -o "$ex/render_loop_cuda"
    if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
        "$ex/render_loop_cuda" --fps 0 --frames 24 --sampler H1P3R2 -o "$ex/walk_cuda.y4m"
        cmp -s "$ex/walk_cuda.y4m" "$ex/walk.y4m" && echo "examples: CUDA render loop: same bytes as the CPU one" \
            || echo "examples: CUDA render loop ran (bf16: bytes differ from the fp32 CPU loop)"
    else
        echo "examples: CUDA render loop built; SKIP run: no GPU"
    fi
fi
echo "examples: all passed"
