"""The city DRG point-method platform (绍兴市DRGs点数法综合管理应用平台, requirement S7)."""
