"""Writes model.json: a Keras 3 Functional model with the operation node
`x + 3.0` (module keras.src.ops.numpy, class_name "Add"), as Keras 3.15.1
serialises it with to_json(). Run with the test venv's python."""
import os
import keras

inp = keras.Input((4,), name="x")
h = keras.layers.Dense(3, name="dense")(inp)
out = h + 3.0
model = keras.Model(inp, out, name="opnode")
with open(os.path.join(os.path.dirname(__file__), "model.json"), "w") as f:
    f.write(model.to_json())
