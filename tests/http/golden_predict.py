"""tests/http/golden_predict.py — helper of t_validation.sh (stdlib only).

  golden_predict.py request CASE_DIR      prints {"inputs": [...]} nested HWC from input.json
  golden_predict.py compare CASE_DIR      reads the server's answer on stdin and compares its
                                          outputs with expected.json (PyTorch, tests/golden)
Tolerance: 1e-4 relative with a 1e-5 absolute floor, as the engine's tests use.
"""
import json
import sys


def nest(flat, shape):
    if len(shape) == 1:
        return flat[: shape[0]]
    step = 1
    for d in shape[1:]:
        step *= d
    return [nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def main():
    mode, case = sys.argv[1], sys.argv[2]
    if mode == "request":
        inp = json.load(open(case + "/input.json"))
        print(json.dumps({"inputs": nest(inp["data"], inp["shape"])}))
        return 0
    exp = json.load(open(case + "/expected.json"))
    got = json.load(sys.stdin)["outputs"]
    flat = [v for row in got for v in row]
    if len(flat) != len(exp["data"]):
        print("length %d, expected %d" % (len(flat), len(exp["data"])))
        return 1
    worst = 0.0
    for g, e in zip(flat, exp["data"]):
        err = abs(g - e) / max(abs(e), 1e-1)
        if abs(g - e) > 1e-5 + 1e-4 * abs(e):
            print("output %r, expected %r" % (g, e))
            return 1
        worst = max(worst, err)
    print("ok, worst relative error %.2e" % worst)
    return 0


sys.exit(main())
