"""The zoo's approximate-density family: a VAE and a PixelVAE (a bound on the log-likelihood)."""
