"""Deployment: SavedModels for TF Serving, TFLite models, fast batch prediction.

- `saved_model.export_saved_model`: raw-text and token-id signatures, warmup file.
- `tflite.convert_to_tflite`: float32 / float16 / dynamic-range int8, tokenizer optionally inside,
  verified against the Keras model after every conversion.
- `inference.Predictor`: bfloat16 where the hardware has it, length bucketing.
- `exporter.export_model`: a pretrained directory -> `OUTPUT/VERSION/` (`albert-keras export`).

See docs/export.md.
"""
