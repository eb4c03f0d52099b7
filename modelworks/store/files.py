"""The names of every file the project writes, declared once.

A run folder, a compression record, an export folder and a study folder are read and written
through `modelworks.store`; no other module spells these names.
"""

# ---- a run folder (`modelworks.store.run`)
CONFIG = "config.yaml"  # the fully resolved experiment config
WEIGHTS = "model.safetensors"  # the trained (or compressed) weights
PREPROCESS = "preprocess.json"  # fitted preprocessing state and the model's input schema
METRICS = "metrics.jsonl"  # step and epoch records, appended as training goes
CHECKPOINT = "checkpoint.safetensors"  # model, optimizer, schedule, RNG and counters for --resume
REPORT_JSON = "report.json"  # the evaluation report
REPORT_HTML = "report.html"
ENVIRONMENT = "environment.json"  # package versions, device, git commit
CV_JSON = "cv.json"  # k-fold cross-validation summary
COMPRESSION_JSON = "compression.json"  # a compressed run's comparison with its parent
REPLAY = "replay.safetensors"  # train.replay: the class-balanced reservoir of training rows (private data)
HOLDOUT = "holdout.safetensors"  # train.replay: the frozen holdout of every window's test rows (private data)

# ---- an export folder (RUN/export/FORMAT/)
EXPORT_DIR = "export"
EXPORT_JSON = "export.json"
INPUTS_JSON = "inputs.json"
ONNX_MODEL = "model.onnx"
ONNX_INT8_MODEL = "model.int8.onnx"
TORCHSCRIPT_MODEL = "model.pt"
TRITON_CONFIG = "config.pbtxt"  # a Triton model repository's model config

# ---- a study folder (`modelworks tune`)
STUDY_EXPERIMENT = "experiment.yaml"
TRIALS_CSV = "trials.csv"
BEST_YAML = "best.yaml"
TUNE_JSON = "tune.json"
TUNE_HTML = "tune.html"
