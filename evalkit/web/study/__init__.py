"""Human rating studies: physicians and lay raters grade long answers (Med-PaLM 2 style); the judge is measured against them."""
