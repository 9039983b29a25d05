"""Offline quality scoring: paired PSNR/SSIM against ground truth, FID/KID on Inception features."""
