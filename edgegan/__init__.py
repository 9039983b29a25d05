"""EdgeGAN: train a selfie-to-cartoon GAN once, run it in real time on the edge."""

__version__ = "0.1.0"
