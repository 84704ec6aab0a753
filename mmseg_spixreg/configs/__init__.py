# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Partial configs a model config imports: the paper's HCFCN settings (:mod:`.hcfcn`)."""
