"""Plain helpers the generated notebooks call, so a refined notebook reads like a tidy analysis."""
