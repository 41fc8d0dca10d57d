"""
The box agent: the service inside a box that runs the build job.

kiwi_box_agent.py is installed into the box as a plain script (standard
library only); it is a module here so its pure parts can be tested.
"""
