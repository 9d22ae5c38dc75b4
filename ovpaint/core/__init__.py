"""Qt-free, torch-free foundations: documents, masks, images, settings, paths, jobs."""
