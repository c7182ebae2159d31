"""Tests of the deployment files: Dockerfile, docker-compose.yml, .env.example, and the topology as processes."""
