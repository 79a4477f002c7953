# numpy side of bench/kernels.bench.mjs: times plain matmul, unmerged LoRA (x@W + s*(x@down)@up), merged LoRA and
# the merge itself in float32 for the shapes given as JSON on argv[1]; checks each result on sampled rows against
# float64; prints one JSON object. Thread count comes from OPENBLAS_NUM_THREADS, set by the caller.
import ctypes, glob, json, os, sys, time
import numpy as np

def corename():
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*"))
    for lib in libs:
        l = ctypes.CDLL(lib)
        for name in ("scipy_openblas_get_corename64_", "openblas_get_corename64_", "openblas_get_corename"):
            f = getattr(l, name, None)
            if f is not None:
                f.restype = ctypes.c_char_p
                return f().decode()
    return "unknown"

def best(f, reps):
    f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return min(ts)

def check(h, x, w, down, up, s, rows):
    ref = x[:rows].astype(np.float64) @ w.astype(np.float64)
    if s != 0:
        ref += s * (x[:rows].astype(np.float64) @ down.astype(np.float64)) @ up.astype(np.float64)
    gauge = np.abs(x[:rows]).astype(np.float64) @ np.abs(w).astype(np.float64)
    bound = 2 * 2**-24 * (x.shape[1] + 16) * (gauge + np.abs(ref)) + 1e-30
    return bool(np.all(np.abs(h[:rows] - ref) <= bound))

out = {"corename": corename(), "numpy": np.__version__, "threads": os.environ.get("OPENBLAS_NUM_THREADS"), "shapes": []}
rng = np.random.default_rng(0)
for n, d_in, d_out, r, reps in json.loads(sys.argv[1]):
    x = rng.uniform(-1, 1, (n, d_in)).astype(np.float32)
    w = rng.uniform(-1, 1, (d_in, d_out)).astype(np.float32)
    down = rng.uniform(-1, 1, (d_in, r)).astype(np.float32)
    up = rng.uniform(-1, 1, (r, d_out)).astype(np.float32)
    s = np.float32(2.0 / r)
    rows = min(n, 4)
    res = {"shape": [n, d_in, d_out, r]}
    ok = check(x @ w, x, w, down, up, 0, rows) and check(x @ w + s * ((x @ down) @ up), x, w, down, up, s, rows)
    merged = w + s * (down @ up)
    ok = ok and check(x @ merged, x, w, down, up, s, rows)
    res["ok"] = ok
    if ok:
        res["matmul"] = best(lambda: x @ w, reps)
        res["lora"] = best(lambda: x @ w + s * ((x @ down) @ up), reps)
        res["merged"] = best(lambda: x @ merged, reps)
        res["merge"] = best(lambda: w + s * (down @ up), reps)
        if n * d_in * d_out <= 8:
            k = 20000
            t0 = time.perf_counter()
            for _ in range(k):
                x @ w + s * ((x @ down) @ up)
            res["lora_call_us"] = (time.perf_counter() - t0) / k * 1e6
    out["shapes"].append(res)
print(json.dumps(out))
