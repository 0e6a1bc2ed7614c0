"""Reference outputs from PyTorch for the engine's tests.

Usage: torch_ref.py DIR. DIR/spec.json lists cases {name, code, inputs}; each
input is {dtype, shape, offset, nbytes} into DIR/inputs.bin. `code` is a Python
expression, or statements that assign `out`, evaluated with the inputs bound to
their names and torch, F (torch.nn.functional), nn, np, math in scope. Outputs
(a tensor, number, string, or nested tuples/lists of them) are flattened and
written to DIR/out.json + DIR/out.bin (tensors as float64, with their original
dtype named). A failing case records its error instead of stopping the run.
"""
import json
import math
import os
import sys
import traceback

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NP = {
    'float16': np.float16, 'float32': np.float32, 'float64': np.float64,
    'int8': np.int8, 'int16': np.int16, 'int32': np.int32, 'int64': np.int64,
    'uint8': np.uint8, 'bool': np.bool_,
}


def load_inputs(spec, blob):
    out = {}
    for name, info in spec.items():
        raw = blob[info['offset']:info['offset'] + info['nbytes']]
        arr = np.frombuffer(raw, dtype=NP[info['dtype']]).reshape(info['shape']).copy()
        out[name] = torch.from_numpy(arr)
    return out


def flatten(value, acc):
    if isinstance(value, torch.Tensor):
        acc.append(('tensor', value))
    elif isinstance(value, (tuple, list)):
        for v in value:
            flatten(v, acc)
    elif isinstance(value, (bool, int, float)):
        acc.append(('value', value))
    elif isinstance(value, str):
        acc.append(('value', value))
    else:
        raise TypeError(f'unsupported output type {type(value).__name__}')
    return acc


def run_case(case, blob):
    env = {'torch': torch, 'F': F, 'nn': nn, 'np': np, 'math': math}
    env.update(load_inputs(case['inputs'], blob))
    torch.manual_seed(0)
    code = case['code']
    try:
        compiled = compile(code, case['name'], 'eval')
        return eval(compiled, env)
    except SyntaxError:
        exec(compile(code, case['name'], 'exec'), env)
        return env['out']


def main():
    d = sys.argv[1]
    with open(os.path.join(d, 'spec.json')) as f:
        spec = json.load(f)
    with open(os.path.join(d, 'inputs.bin'), 'rb') as f:
        blob = f.read()
    torch.set_num_threads(1)
    results = {}
    chunks = []
    offset = 0
    for case in spec['cases']:
        try:
            items = flatten(run_case(case, blob), [])
            outs = []
            for kind, v in items:
                if kind == 'value':
                    outs.append({'value': v})
                    continue
                t = v.detach()
                dtype = str(t.dtype).replace('torch.', '')
                data = t.to(torch.float64).contiguous().numpy().tobytes()
                outs.append({'dtype': dtype, 'shape': list(t.shape), 'offset': offset, 'nbytes': len(data)})
                chunks.append(data)
                offset += len(data)
            results[case['name']] = {'outputs': outs}
        except Exception:  # reported per case, the TS side fails that test
            results[case['name']] = {'error': traceback.format_exc(limit=3)}
    with open(os.path.join(d, 'out.bin'), 'wb') as f:
        for c in chunks:
            f.write(c)
    with open(os.path.join(d, 'out.json'), 'w') as f:
        json.dump(results, f, allow_nan=True)


if __name__ == '__main__':
    main()
