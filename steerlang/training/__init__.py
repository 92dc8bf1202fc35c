"""SAE training (`steer train-sae`) and SAE quality metrics (`steer sae-stats`).

Submodules (import them directly; this package imports no torch so the CLI starts fast):

- `steerlang.training.activations`: activations from images, captured for many sites in one
  forward pass, held in memory or cached on disk as content-keyed safetensors shards, and token
  sources that feed the trainer (in memory, from disk shards, or streamed from the model).
- `steerlang.training.trainer`: `train_sae(acts, TrainConfig) -> (SAE, TrainMetrics)`, ReLU+L1
  and TopK+AuxK, and `train_site_saes` (all layers of a model from one activation pass).
- `steerlang.training.sae_metrics`: FVU / explained variance, L0 (CLS and patches), dead and
  dense fractions, and zero-shot accuracy recovered with the SAE spliced in.
"""
