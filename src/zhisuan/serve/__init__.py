"""The composition root: `zhisuan server` wires the store, the engines, the control loop and the API
into one process (and `ServerProcess` starts that process for the demo, benchmarks and tests). It may
import every layer; no layer imports it."""
