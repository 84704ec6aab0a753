# Copyright (c) mmseg-spixreg contributors. All rights reserved.
from .assignment_neck import AssignmentNeck

__all__ = ['AssignmentNeck']
