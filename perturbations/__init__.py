"""ImageNet-P perturbation sequences (to come; the package exists so the layout is fixed)."""
