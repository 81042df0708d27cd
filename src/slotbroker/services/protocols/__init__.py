"""Protocol translators: foreign wire formats (IVOA ExecutionBroker, FABRIC reports API and orchestrator)
read into our find-slot, offer and lease use cases and their answers written back in the foreign shape.
They hold no scheduling rule of their own."""
