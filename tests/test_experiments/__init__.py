# Copyright (c) mmseg-spixreg contributors. All rights reserved.
