# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""Install mmseg_spixreg: superpixel upsampling (HCFCN) + SLIC regulariser for MMSegmentation."""
import os.path as osp
from setuptools import find_packages, setup


def get_version():
    ns = {}
    with open(osp.join(osp.dirname(__file__), 'mmseg_spixreg', 'version.py')) as f:
        exec(f.read(), ns)
    return ns['__version__']


def parse_requirements(fname):
    reqs = []
    with open(osp.join(osp.dirname(__file__), 'requirements', fname)) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line:
                reqs.append(line)
    return reqs


setup(
    name='mmseg_spixreg',
    version=get_version(),
    description='Superpixel-upsampling segmentation with a SLIC regulariser for MMSegmentation',
    long_description=open('README.md', encoding='utf-8').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=('mmseg_spixreg', 'mmseg_spixreg.*')),
    python_requires='>=3.8',
    install_requires=parse_requirements('runtime.txt'),
    extras_require={
        'mim': parse_requirements('mminstall.txt'),
        'tests': parse_requirements('tests.txt'),
    },
    license='Apache License 2.0',
    zip_safe=False,
)
