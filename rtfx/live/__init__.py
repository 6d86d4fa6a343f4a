"""Live audio: the real-time engine, devices and a virtual JACK sound card for tests."""
