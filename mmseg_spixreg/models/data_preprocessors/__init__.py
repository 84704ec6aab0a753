from .spix_data_preprocessor import SpixSegDataPreProcessor

__all__ = ['SpixSegDataPreProcessor']
