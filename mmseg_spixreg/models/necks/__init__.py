from .assignment_neck import AssignmentNeck

__all__ = ['AssignmentNeck']
