# Runtime shared by every mmseg_spixreg config (mirrors mmseg's configs/_base_/default_runtime.py).
# `custom_imports` registers the plug-in's modules in mmseg's registries, so these configs also work
# with mmseg's own tools/train.py; a user's own config only needs the same two lines.
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_spixreg'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
# mmseg's SegLocalVisualizer + a tile with the hard-superpixel boundaries of HCFCN models (what
# tools/test.py --show-dir, the SegVisualizationHook and MMSegInferencer draw); stock models are
# drawn exactly as by SegLocalVisualizer. draw_superpixels=False turns the tile off.
visualizer = dict(
    type='SpixSegLocalVisualizer',
    vis_backends=vis_backends,
    name='visualizer',
    draw_superpixels=True)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
# tta_model comes with the model base (mmseg's SegTTAModel for FCN-16, SpixSegTTAModel for HCFCN)
# torch RNG state saved in checkpoints and restored on --resume (exact resume of dropout etc.)
custom_hooks = [dict(type='RNGStateHook')]
