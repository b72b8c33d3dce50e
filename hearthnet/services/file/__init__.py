"""Files: blobs shared on the mesh (file.read, file.list, file.advertise, file.put, file.fetch, file.unpin)."""
