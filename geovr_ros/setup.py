"""ament_python package of GeoVR-ROS: nodes, launch files, configuration, pure core."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'geovr_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml') + glob('config/*.xml')
         + glob('config/*.rviz')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='GeoVR-ROS maintainers',
    maintainer_email='maintainers@geovr-ros.dev',
    description='Spatial perception from one camera: metric depth, pose, localization '
                'and answers to spatial questions.',
    license='Apache-2.0',
    extras_require={'test': ['pytest', 'hypothesis']},
    entry_points={
        'console_scripts': [
            'geovr_node = geovr_ros.nodes.geovr_node:main',
            'replay_node = geovr_ros.nodes.replay_node:main',
            'ask = geovr_ros.nodes.ask:main',
            'geovr-bench = geovr_ros.inference.bench:main',
        ],
    },
)
