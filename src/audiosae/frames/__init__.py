"""Frame level: every frame of every clip, frame-level SAEs, and the acoustics over time.

- ``store``: the frame store ``results/frames/{model}.zarr`` (layout, size estimate, reading);
- ``extract``: writing it (the only part that runs a foundation model);
- ``stream``: shuffled batches streamed from it (memory flat in the corpus size);
- ``train``: a frame-level SAE, its pooled clip codes and its test clips' sparse frame codes;
- ``acoustics``: eGeMAPS low-level descriptors over time against each unit (Spearman, matched MCC).
"""
