"""Custom components namespace; lets the HA test loader find bambu_cloud."""
