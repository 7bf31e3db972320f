"""PyTorch parts of blobsift: losses, models, data sampling, augmentation and training."""
